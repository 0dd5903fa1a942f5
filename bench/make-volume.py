#!/usr/bin/python3
"""A synthetic 256 x 256 x 150 head-like volume for the scan benchmark, written both as a DICOM
series (150 single-frame files, explicit VR little endian, int16 with a window, shuffled names)
and as a NIfTI-1 .nii.gz.

    bench/make-volume.py OUT_DIR      -> OUT_DIR/series/IM*, OUT_DIR/volume.nii.gz
"""
import os
import sys

import nibabel
import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SIDE, SLICES = 256, 150


def phantom():
    z, y, x = np.mgrid[0:SLICES, 0:SIDE, 0:SIDE].astype(np.float32)
    zc = (z - SLICES / 2) / (SLICES / 2)
    r = np.sqrt(np.clip(1 - zc ** 2, 0, 1))  # the head narrows towards its ends
    head = ((x - 128) / (100 * r + 1e-3)) ** 2 + ((y - 128) / (120 * r + 1e-3)) ** 2
    vol = np.where(head < 1, 900.0, 0.0)
    vol += np.where(head < 0.8, 300.0, 0.0)
    lesion = ((x - 90) ** 2 + (y - 100) ** 2 + ((z - 80) * 2) ** 2) < 20 ** 2
    vol += np.where(lesion, 1200.0, 0.0)
    rng = np.random.default_rng(1)
    vol += rng.normal(0, 20, vol.shape)
    return np.clip(vol, -1000, 3000).astype(np.int16)


def main(out):
    vol = phantom()
    series = os.path.join(out, "series")
    os.makedirs(series, exist_ok=True)
    uid = generate_uid()
    order = np.random.default_rng(2).permutation(SLICES)
    for i, z in enumerate(order):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesDescription = "MR", uid, "benchmark phantom"
        ds.Rows = ds.Columns = SIDE
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelSpacing, ds.SliceThickness = [0.9, 0.9], 1.0
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, float(z)]
        ds.InstanceNumber = int(z) + 1
        ds.WindowCenter, ds.WindowWidth = 1000, 2400
        ds.PixelData = vol[z].tobytes()
        ds.save_as(os.path.join(series, "IM%04d" % i), write_like_original=False)
    nibabel.save(nibabel.Nifti1Image(vol.transpose(2, 1, 0), np.diag([-0.9, -0.9, 1.0, 1.0])),
                 os.path.join(out, "volume.nii.gz"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
