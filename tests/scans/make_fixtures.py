"""Test fixtures for src/formats/scans, made from synthetic images (run through make-fixtures).

Everything starts from two pictures drawn here: grey.pgm, a head-like 8-bit slice (173 x 151,
odd on purpose: skull ring, brain with smooth texture, two unequal ventricles, a bright lesion
and a marker in the image's top-left corner), and colour.ppm (172 x 151; YBR_FULL_422 needs an
even width). The tests read those two files to compute what every decoded file must give.

OUT/
  grey.pgm colour.ppm            the originals
  dicom/base8.dcm                grey.pgm through gdcmimg, Window Center 128 / Width 256
  dicom/ts/*.dcm                 base8 in every transfer syntax (names in TRANSFER_SYNTAXES)
  dicom/bits/*.dcm               12/16-bit, signed/unsigned: windows that map back to grey.pgm
  dicom/bits_ts/*.dcm            16-bit signed and 12-bit through the codecs
  dicom/mono1.dcm, rescale_*.dcm, multiframe*.dcm, colour/*.dcm, privacy.dcm, raw_dataset.dcm
  series/geometry/               10 tilted axial slices, shuffled names, InstanceNumber reversed,
                                 plus a 3-slice second series (another SeriesInstanceUID)
  series/numbered/               6 slices with only InstanceNumber
  dicomdir/DICOMDIR, dicomdir/renamed_dicomdir.dcm
  nifti/*.nii, *.nii.gz          coded volumes in many orientations, head volumes in int16,
                                 uint8, float32 with scl_slope, NIfTI-2, qform only, 4-D
  errors/                        truncated, unsupported transfer syntaxes, SR, hostile sizes,
                                 NIfTI with huge dims, truncated NIfTI
With --seeds DIR: DIR/fuzz_dicom and DIR/fuzz_nifti get tiny versions (a few kB at most).
"""

import copy
import gzip
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import nibabel as nib
import numpy as np
import pydicom
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

W, H = 173, 151          # grey image
CW, CH = 172, 151        # colour image
MR = "1.2.840.10008.5.1.4.1.1.4"
CT = "1.2.840.10008.5.1.4.1.1.2"
SC = "1.2.840.10008.5.1.4.1.1.7"
SC_MULTIFRAME_BYTE = "1.2.840.10008.5.1.4.1.1.7.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def uid(label):
    # Deterministic UIDs: the same fixtures on every run.
    return generate_uid(entropy_srcs=["neurolens-scan-fixtures", label])


# ------------------------------------------------------------------------------------------
# The synthetic pictures
# ------------------------------------------------------------------------------------------
def box_blur(a, r):
    p = np.pad(a, r, mode="edge")
    out = np.zeros_like(a, dtype=np.float64)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out += p[r + dy:r + dy + a.shape[0], r + dx:r + dx + a.shape[1]]
    return out / (2 * r + 1) ** 2


def head_image(w, h):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = w / 2 - 0.5, h / 2 + 2
    def ellipse(x0, y0, rx, ry):
        return ((xx - x0) / rx) ** 2 + ((yy - y0) / ry) ** 2 <= 1
    img = np.zeros((h, w))
    img[ellipse(cx, cy, 0.46 * w, 0.47 * h)] = 225                         # skull
    brain = ellipse(cx, cy, 0.41 * w, 0.42 * h)
    texture = 105 + 30 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + 0.25 * (yy - cy)
    img[brain] = texture[brain]
    img[ellipse(cx - 12, cy - 4, 9, 17)] = 35                               # ventricles, unequal
    img[ellipse(cx + 11, cy - 2, 6, 13)] = 45
    img[ellipse(cx + 0.2 * w, cy + 0.2 * h, 10, 8)] = 240                    # lesion
    img = box_blur(img, 1)
    img[6:16, 8:20] = 255                                                    # marker: top left
    img[h - 4:h, w - 3:w] = 0
    img[20:24, w - 12:w - 6] = 1
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def colour_image(w, h):
    g = head_image(w, h).astype(np.float64)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.clip(g * 0.9 + 25 * (xx / w), 0, 255)
    gr = np.clip(g * 0.8 + 40 * (yy / h), 0, 255)
    b = np.clip(255 - g * 0.7, 0, 255)
    b[h // 3:h // 3 + 12, w // 4:w // 4 + 30] = 250                          # a blue patch
    r[h // 3:h // 3 + 12, w // 4:w // 4 + 30] = 10
    rgb = np.stack([box_blur(r, 1), box_blur(gr, 1), box_blur(b, 1)], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def write_pnm(path, arr):
    if arr.ndim == 2:
        header = b"P5\n%d %d\n255\n" % (arr.shape[1], arr.shape[0])
    else:
        header = b"P6\n%d %d\n255\n" % (arr.shape[1], arr.shape[0])
    with open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(arr).tobytes())


# ------------------------------------------------------------------------------------------
# DICOM helpers
# ------------------------------------------------------------------------------------------
def run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("make-fixtures: %s failed (%d):\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))


def new_dataset(label, sop_class, rows, cols, modality="MR"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid(label + "/sop")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = uid("implementation")
    ds = FileDataset(label, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid(label + "/series")
    ds.Modality = modality
    ds.SeriesDescription = "synthetic " + label
    ds.Rows = rows
    ds.Columns = cols
    return ds


def set_pixels(ds, arr, bits_stored=None, signed=False, photometric="MONOCHROME2", planar=None):
    """arr: (rows, cols) or (frames, rows, cols) or (..., 3) for colour, in its final dtype."""
    samples = 3 if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") else 1
    allocated = arr.dtype.itemsize * 8
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored or allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if samples == 3:
        ds.PlanarConfiguration = planar or 0
    ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OB" if allocated == 8 else "OW"


def save(ds, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, write_like_original=False)


def write_raw(ds, path):
    # A bare data set (implicit VR little endian): no preamble, no "DICM", no meta header.
    ds.is_implicit_VR = True
    ds.preamble = None
    ds.file_meta = FileMetaDataset()
    pydicom.dcmwrite(path, ds, write_like_original=True)


def window(ds, center, width):
    ds.WindowCenter = center
    ds.WindowWidth = width


# ------------------------------------------------------------------------------------------
# DICOM fixtures
# ------------------------------------------------------------------------------------------
# name -> how base8.dcm is converted (the tests list the same names with their expectations)
TRANSFER_SYNTAXES = {
    "implicit_le":        ("dcmconv", "+ti"),
    "explicit_le":        ("dcmconv", "+te"),
    "explicit_be":        ("dcmconv", "+tb"),
    "deflated":           ("dcmconv", "+td"),
    "rle":                ("dcmcrle",),
    "jpeg_baseline":      ("dcmcjpeg", "+eb", "+q", "95"),
    "jpeg_extended8":     ("dcmcjpeg", "+ee", "+q", "95"),
    "jpeg_lossless_p14":  ("dcmcjpeg", "+el", "+sv", "6"),
    "jpeg_lossless_sv1":  ("dcmcjpeg", "+e1"),
    "jpegls_lossless":    ("dcmcjpls", "+el"),
    "jpegls_near":        ("dcmcjpls", "+en", "+md", "2"),
    "j2k_lossless":       ("gdcmconv", "--j2k"),
    "j2k_lossy":          ("gdcmconv", "--j2k", "--lossy", "-q", "45"),
}


def convert(tool_args, src, dst):
    tool, *args = tool_args
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if tool == "gdcmconv":
        run(tool, *args, src, dst)
    else:
        run(tool, *args, src, dst)


def make_base8(out, grey, tmp):
    pgm = os.path.join(tmp, "grey.pgm")
    write_pnm(pgm, grey)
    base = os.path.join(out, "dicom", "base8.dcm")
    os.makedirs(os.path.dirname(base), exist_ok=True)
    run("gdcmimg", "-i", pgm, "-o", base)
    # An identity window for 8-bit data: LINEAR with center 128, width 256 maps x to x.
    run("dcmodify", "-nb", "-i", "(0028,1050)=128", "-i", "(0028,1051)=256",
        "-i", "(0008,0060)=MR", "-i", "(0008,103E)=synthetic base8", base)
    return base


def make_bits(out, grey):
    g = grey.astype(np.int64)
    d = os.path.join(out, "dicom", "bits")
    # unsigned 12-bit: x = 16 g + 7; LINEAR c 2040.5, w 4081 gives (x - 2040)/4080 + 0.5 = g/255 + 7/4080
    ds = new_dataset("grey12u", MR, H, W)
    set_pixels(ds, (16 * g + 7).astype(np.uint16), bits_stored=12)
    window(ds, 2040.5, 4081)
    save(ds, os.path.join(d, "grey12u.dcm"))
    # the same with junk in the four bits above BitsStored (overlay bits in old files)
    ds = new_dataset("grey12u_highbits", MR, H, W)
    set_pixels(ds, ((16 * g + 7) | (0xA000 * (g % 2))).astype(np.uint16), bits_stored=12)
    window(ds, 2040.5, 4081)
    save(ds, os.path.join(d, "grey12u_highbits.dcm"))
    # signed 12-bit in 16 bits: x = 16 g - 2048 (sign-extended), c -7.5, w 4081
    ds = new_dataset("grey12s", MR, H, W)
    set_pixels(ds, (16 * g - 2048).astype(np.int16), bits_stored=12, signed=True)
    window(ds, -7.5, 4081)
    save(ds, os.path.join(d, "grey12s.dcm"))
    # unsigned 16-bit: x = 257 g (0..65535), c 32768, w 65536
    ds = new_dataset("grey16u", MR, H, W)
    set_pixels(ds, (257 * g).astype(np.uint16))
    window(ds, 32768, 65536)
    save(ds, os.path.join(d, "grey16u.dcm"))
    # signed 16-bit: x = 256 g - 32768 + 100, c -27.5, w 65281
    ds = new_dataset("grey16s", MR, H, W)
    set_pixels(ds, (256 * g - 32768 + 100).astype(np.int16), signed=True)
    window(ds, -27.5, 65281)
    save(ds, os.path.join(d, "grey16s.dcm"))


def make_bits_ts(out):
    src = os.path.join(out, "dicom", "bits")
    dst = os.path.join(out, "dicom", "bits_ts")
    os.makedirs(dst, exist_ok=True)
    s16 = os.path.join(src, "grey16s.dcm")
    u12 = os.path.join(src, "grey12u.dcm")
    run("dcmconv", "+tb", s16, os.path.join(dst, "grey16s_explicit_be.dcm"))
    run("dcmconv", "+td", s16, os.path.join(dst, "grey16s_deflated.dcm"))
    run("dcmcrle", s16, os.path.join(dst, "grey16s_rle.dcm"))
    run("dcmcjpls", "+el", s16, os.path.join(dst, "grey16s_jpegls.dcm"))
    run("gdcmconv", "--j2k", s16, os.path.join(dst, "grey16s_j2k.dcm"))
    run("dcmcjpeg", "+e1", s16, os.path.join(dst, "grey16s_jpeg_lossless_sv1.dcm"))
    run("dcmcjpeg", "+e1", u12, os.path.join(dst, "grey12u_jpeg_lossless_sv1.dcm"))
    run("dcmcjpeg", "+ee", "+q", "95", u12, os.path.join(dst, "grey12u_jpeg_extended12.dcm"))


def make_simple_variants(out, grey):
    g = grey.astype(np.int64)
    d = os.path.join(out, "dicom")
    # MONOCHROME1: stored 255 - g; after the identity window and inversion: g again
    ds = new_dataset("mono1", MR, H, W)
    set_pixels(ds, (255 - g).astype(np.uint8), photometric="MONOCHROME1")
    window(ds, 128, 256)
    save(ds, os.path.join(d, "mono1.dcm"))
    # Rescale: stored 4 g + 1000, slope 0.25, intercept -250: real-world values are g
    ds = new_dataset("rescale_mr", MR, H, W)
    set_pixels(ds, (4 * g + 1000).astype(np.uint16))
    ds.RescaleSlope = "0.25"
    ds.RescaleIntercept = "-250"
    window(ds, 128, 256)
    save(ds, os.path.join(d, "rescale_mr.dcm"))
    # CT: stored g + 1024 (signed), intercept -1024
    ds = new_dataset("rescale_ct", CT, H, W, modality="CT")
    set_pixels(ds, (g + 1024).astype(np.int16), signed=True)
    ds.RescaleSlope = "1"
    ds.RescaleIntercept = "-1024"
    ds.RescaleType = "HU"
    window(ds, 128, 256)
    save(ds, os.path.join(d, "rescale_ct.dcm"))
    # A Rescale Slope so large that real-world values leave float's range: clamped
    ds = new_dataset("rescale_huge", MR, H, W)
    set_pixels(ds, grey)
    ds.RescaleSlope = "1e300"
    ds.RescaleIntercept = "0"
    save(ds, os.path.join(d, "rescale_huge.dcm"))
    # Multi-frame: frames g, 255 - g, g // 2
    frames = np.stack([g, 255 - g, g // 2]).astype(np.uint8)
    ds = new_dataset("multiframe", SC_MULTIFRAME_BYTE, H, W, modality="OT")
    set_pixels(ds, frames)
    ds.NumberOfFrames = 3
    window(ds, 128, 256)
    path = os.path.join(d, "multiframe.dcm")
    save(ds, path)
    run("dcmcrle", path, os.path.join(d, "multiframe_rle.dcm"))
    run("dcmcjpls", "+el", path, os.path.join(d, "multiframe_jpegls.dcm"))
    # A data set without preamble and meta header (implicit VR little endian), as old PACS write.
    ds = new_dataset("raw_dataset", MR, H, W)
    set_pixels(ds, grey)
    window(ds, 128, 256)
    write_raw(ds, os.path.join(d, "raw_dataset.dcm"))
    # Series descriptions in Latin-1 (declared), UTF-8 (declared) and undeclared 8-bit bytes:
    # ScanInfo must hold them as UTF-8 (JSON needs it).
    for name, charset, text in (("charset_latin1", "ISO_IR 100", "Schädel axial".encode("latin-1")),
                                ("charset_utf8", "ISO_IR 192", "Schädel 頭部".encode("utf-8")),
                                ("charset_undeclared", None, b"Sch\xe4del \xff\xfe")):
        ds = new_dataset(name, MR, H, W)
        set_pixels(ds, grey)
        if charset:
            ds.SpecificCharacterSet = charset
        ds.add_new(0x0008103E, "LO", text)
        save(ds, os.path.join(d, name + ".dcm"))
    # Privacy: identifying attributes that must never reach describe()/to_json.
    ds = new_dataset("privacy", MR, H, W)
    set_pixels(ds, grey)
    window(ds, 128, 256)
    ds.PatientName = "Doe^Janet^Secretname"
    ds.PatientID = "PID-83920571"
    ds.PatientBirthDate = "19610317"
    ds.InstitutionName = "Saint Privacy Hospital"
    ds.ReferringPhysicianName = "Referrer^Hidden"
    ds.AccessionNumber = "ACC77812"
    ds.StudyDescription = "Study of Janet"
    save(ds, os.path.join(d, "privacy.dcm"))


def ybr_full(rgb):
    r, g, b = [rgb[..., i].astype(np.float64) for i in range(3)]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return np.clip(np.rint(np.stack([y, cb, cr], axis=-1)), 0, 255).astype(np.uint8)


def make_colour(out, rgb):
    d = os.path.join(out, "dicom", "colour")
    for planar in (0, 1):
        ds = new_dataset("rgb_planar%d" % planar, SC, CH, CW, modality="OT")
        arr = rgb if planar == 0 else np.ascontiguousarray(rgb.transpose(2, 0, 1))
        set_pixels(ds, arr, photometric="RGB", planar=planar)
        save(ds, os.path.join(d, "rgb_planar%d.dcm" % planar))
    ybr = ybr_full(rgb)
    ds = new_dataset("ybr_full", SC, CH, CW, modality="OT")
    set_pixels(ds, ybr, photometric="YBR_FULL")
    save(ds, os.path.join(d, "ybr_full.dcm"))
    # YBR_FULL_422 native: Y0 Y1 Cb Cr for each horizontal pair (chroma averaged over the pair)
    pairs = ybr.reshape(CH, CW // 2, 2, 3).astype(np.int64)
    packed = np.empty((CH, CW // 2, 4), dtype=np.uint8)
    packed[..., 0] = pairs[:, :, 0, 0]
    packed[..., 1] = pairs[:, :, 1, 0]
    packed[..., 2] = (pairs[:, :, 0, 1] + pairs[:, :, 1, 1] + 1) // 2
    packed[..., 3] = (pairs[:, :, 0, 2] + pairs[:, :, 1, 2] + 1) // 2
    ds = new_dataset("ybr_full_422", SC, CH, CW, modality="OT")
    set_pixels(ds, ybr, photometric="YBR_FULL_422")
    ds.PixelData = packed.tobytes()
    save(ds, os.path.join(d, "ybr_full_422.dcm"))
    src = os.path.join(d, "rgb_planar0.dcm")
    run("dcmcjpeg", "+eb", "+q", "95", src, os.path.join(d, "rgb_jpeg_baseline.dcm"))   # YBR_FULL_422
    run("dcmcjpeg", "+e1", src, os.path.join(d, "rgb_jpeg_lossless_sv1.dcm"))
    run("dcmcrle", src, os.path.join(d, "rgb_rle.dcm"))
    run("gdcmconv", "--j2k", src, os.path.join(d, "rgb_j2k.dcm"))
    run("dcmcjpls", "+el", src, os.path.join(d, "rgb_jpegls.dcm"))


def make_series(out, grey):
    g = grey.astype(np.int64)
    d = os.path.join(out, "series", "geometry")
    # Tilted axial slices: rows along x, columns along (0, cos t, -sin t), normal (0, sin t, cos t).
    # Each slice is also moved within its plane by a varying amount along the column direction,
    # so sorting by z alone (or by InstanceNumber, which is reversed) gives a different order.
    t = np.radians(15)
    row = np.array([1.0, 0, 0])
    col = np.array([0, np.cos(t), -np.sin(t)])
    normal = np.cross(row, col)
    names = [3, 7, 0, 9, 5, 1, 8, 2, 6, 4]  # slice k is written as file "im%02d.dcm" % names[k]
    for k in range(10):
        ds = new_dataset("geometry/%d" % k, MR, H, W)
        ds.SeriesInstanceUID = uid("series-geometry")
        set_pixels(ds, ((g + 17 * k) % 256).astype(np.uint8))
        window(ds, 128, 256)
        p = np.array([-86.0, -75.0, 10.0]) + 5.0 * k * normal + 40.0 * ((k * 7) % 10 - 5) * col
        ds.ImageOrientationPatient = ["%.6f" % v for v in np.concatenate([row, col])]
        ds.ImagePositionPatient = ["%.4f" % v for v in p]
        ds.InstanceNumber = 10 - k
        ds.PixelSpacing = ["0.9", "0.8"]
        ds.SliceThickness = "5"
        save(ds, os.path.join(d, "im%02d.dcm" % names[k]))
    for k in range(3):  # a second series in the same folder
        ds = new_dataset("geometry-other/%d" % k, MR, H, W)
        ds.SeriesInstanceUID = uid("series-geometry-other")
        set_pixels(ds, ((g + 100 + k) % 256).astype(np.uint8))
        window(ds, 128, 256)
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.ImagePositionPatient = ["0", "0", str(2.0 * (2 - k))]  # written in descending z
        ds.InstanceNumber = k + 1
        save(ds, os.path.join(d, "other%d.dcm" % k))
    d = os.path.join(out, "series", "mismatch")  # one member has another size
    for k, name in enumerate(["size_a", "size_b", "size_c"]):
        rows, cols = (80, 100) if name == "size_b" else (H, W)
        ds = new_dataset("mismatch/%d" % k, MR, rows, cols)
        ds.SeriesInstanceUID = uid("series-mismatch")
        set_pixels(ds, grey[:rows, :cols].copy())
        window(ds, 128, 256)
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.ImagePositionPatient = ["0", "0", str(3.0 * k)]
        save(ds, os.path.join(d, name + ".dcm"))
    d = os.path.join(out, "series", "numbered")
    names = [4, 2, 5, 0, 3, 1]
    for n in range(1, 7):
        ds = new_dataset("numbered/%d" % n, MR, H, W)
        ds.SeriesInstanceUID = uid("series-numbered")
        set_pixels(ds, ((g + 31 * n) % 256).astype(np.uint8))
        window(ds, 128, 256)
        ds.InstanceNumber = n
        save(ds, os.path.join(d, "slice%d.dcm" % names[n - 1]))


def make_dicomdir(out, base):
    d = os.path.join(out, "dicomdir")
    os.makedirs(d, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "IMAGES"))
        image = os.path.join(tmp, "IMAGES", "IM000001")
        shutil.copy(base, image)
        run("dcmodify", "-nb", "-i", "(0010,0010)=Anonymous", "-i", "(0010,0020)=0", image)
        run("dcmmkdir", "--input-directory", tmp, "--output-file", os.path.join(tmp, "DICOMDIR"),
            "--invent", "IMAGES/IM000001")
        shutil.copy(os.path.join(tmp, "DICOMDIR"), os.path.join(d, "DICOMDIR"))
        shutil.copy(os.path.join(tmp, "DICOMDIR"), os.path.join(d, "renamed_dicomdir.dcm"))


def encapsulated_junk(label, ts, rows=H, cols=W):
    ds = new_dataset(label, MR, rows, cols)
    ds.file_meta.TransferSyntaxUID = ts
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = encapsulate([bytes(range(200)) * 3])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


def set_meta_transfer_syntax(path, ts):
    """Rewrites (0002,0010) of a Part-10 file in place, fixing the group length (0002,0000)."""
    data = bytearray(open(path, "rb").read())
    pos = 132
    group_length_at = None
    while data[pos:pos + 2] == b"\x02\x00":
        element = int.from_bytes(data[pos + 2:pos + 4], "little")
        vr = bytes(data[pos + 4:pos + 6])
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
            length, head = int.from_bytes(data[pos + 8:pos + 12], "little"), 12
        else:
            length, head = int.from_bytes(data[pos + 6:pos + 8], "little"), 8
        if element == 0x0000:
            group_length_at = pos + head
        if element == 0x0010:
            value = ts.encode() + (b"\0" if len(ts) % 2 else b"")
            data[pos + head:pos + head + length] = value
            data[pos + 6:pos + 8] = len(value).to_bytes(2, "little")
            old = int.from_bytes(data[group_length_at:group_length_at + 4], "little")
            data[group_length_at:group_length_at + 4] = (old + len(value) - length).to_bytes(4, "little")
            open(path, "wb").write(bytes(data))
            return
        pos += head + length
    sys.exit("make-fixtures: no (0002,0010) in " + path)


def make_errors(out, base, grey):
    d = os.path.join(out, "errors")
    os.makedirs(d, exist_ok=True)
    data = open(base, "rb").read()
    open(os.path.join(d, "truncated.dcm"), "wb").write(data[:len(data) - 9000])
    open(os.path.join(d, "truncated_header.dcm"), "wb").write(data[:200])
    deflated = open(os.path.join(out, "dicom", "ts", "deflated.dcm"), "rb").read()
    open(os.path.join(d, "truncated_deflated.dcm"), "wb").write(deflated[:len(deflated) * 2 // 3])
    for name, ts in (("htj2k", "1.2.840.10008.1.2.4.201"), ("mpeg2", "1.2.840.10008.1.2.4.100")):
        # Written as JPEG 2000, then the meta header's transfer syntax UID is rewritten (pydicom
        # does not know HTJ2K).
        path = os.path.join(d, name + ".dcm")
        save(encapsulated_junk(name, "1.2.840.10008.1.2.4.90"), path)
        set_meta_transfer_syntax(path, ts)
    # A Basic Text SR: a document, no pixels.
    ds = new_dataset("sr", BASIC_TEXT_SR, 1, 1, modality="SR")
    del ds.Rows
    del ds.Columns
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    save(ds, os.path.join(d, "sr.dcm"))
    # Hostile sizes with a few bytes of pixels.
    ds = new_dataset("huge_rows", MR, 65535, 65535)
    set_pixels(ds, np.arange(16, dtype=np.uint8))
    save(ds, os.path.join(d, "huge_rows.dcm"))
    ds = new_dataset("huge_frames", MR, 512, 512)
    set_pixels(ds, np.arange(16, dtype=np.uint8))
    ds.NumberOfFrames = 4000  # each side and the frame count within limits, the product not
    save(ds, os.path.join(d, "huge_frames.dcm"))
    # An element declaring 1.7 GB in a 27 kB file (GDCM would allocate it before reading).
    ds = new_dataset("overlong_element", MR, H, W)
    set_pixels(ds, grey)
    ds.add_new(0x0040A160, "UT", "abcd")
    path = os.path.join(d, "overlong_element.dcm")
    save(ds, path)
    data = bytearray(open(path, "rb").read())
    at = data.index(b"\x40\x00\x60\xa1UT\x00\x00\x04\x00\x00\x00abcd")
    data[at + 8:at + 12] = (0x6708006D).to_bytes(4, "little")
    open(path, "wb").write(bytes(data))
    # The same data set deflated: GDCM reads it through its inflating stream, which cannot seek
    # (cmake/patches/gdcm-declared-length.patch inflates it into memory first).
    def part10_header(meta):
        buf = io.BytesIO()
        buf.write(b"\0" * 128 + b"DICM")
        pydicom.filewriter.write_file_meta_info(buf, meta, enforce_standard=True)
        return buf.getvalue()
    header = part10_header(ds.file_meta)
    assert data.startswith(header)
    meta = copy.deepcopy(ds.file_meta)
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = packer.compress(bytes(data[len(header):])) + packer.flush()
    open(os.path.join(d, "overlong_deflated.dcm"), "wb").write(part10_header(meta) + deflated)
    # The same overlong element behind an undefined-length UN element (0009,1000) holding one
    # empty item: GDCM reads such a UN as an implicit VR sequence; NeuroLens' own length walk
    # stops there, so only GDCM's length check (cmake/patches/gdcm-declared-length.patch)
    # stands between the file and a 1.7 GB allocation.
    ds.add_new(0x00090010, "LO", "NL")
    save(ds, os.path.join(d, "overlong_after_un.dcm"))
    data = bytearray(open(os.path.join(d, "overlong_after_un.dcm"), "rb").read())
    private = b"\x09\x00\x10\x00LO\x02\x00NL"
    at = data.index(private)
    un = (b"\x09\x00\x00\x10UN\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\x00\x00\x00\x00"
          + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    data[at:at + len(private)] = private + un
    at = data.index(b"\x40\x00\x60\xa1UT\x00\x00\x04\x00\x00\x00abcd")
    data[at + 8:at + 12] = (0x6708006D).to_bytes(4, "little")
    open(os.path.join(d, "overlong_after_un.dcm"), "wb").write(bytes(data))
    # A JPEG 2000 codestream whose tile-part header (SOT) claims 65,520 bytes in a short
    # fragment: GDCM 3.0.24's marker walk stepped past the fragment (SEGV; fixed by
    # cmake/patches/gdcm-j2k-markers.patch).
    data = bytearray(open(os.path.join(out, "dicom", "ts", "j2k_lossless.dcm"), "rb").read())
    at = data.index(b"\xff\x90\x00\x0a")
    data[at + 2:at + 4] = b"\xff\xf0"
    open(os.path.join(d, "j2k_sot_overlong.dcm"), "wb").write(bytes(data))
    # JPEG lossless whose SOF says 230-bit precision (GDCM 3.0.24 dereferences a null codec).
    data = bytearray(open(os.path.join(out, "dicom", "ts", "jpeg_lossless_sv1.dcm"), "rb").read())
    at = data.index(b"\xff\xc3")
    data[at + 4] = 230
    open(os.path.join(d, "jpeg_precision_230.dcm"), "wb").write(bytes(data))
    # RLE fragments whose 64-byte headers claim 655,361 segments and none: GDCM 3.0.24 read past
    # the header for the first (cmake/patches/gdcm-rle-segments.patch) and divided by zero for
    # the second.
    for name, segments in (("rle_segments_655361", 655361), ("rle_segments_0", 0)):
        ds = new_dataset(name, MR, 5, 4)
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.5"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        header = struct.pack("<16I", segments, 64, *([0] * 14))
        ds.PixelData = encapsulate([header + bytes([19] + list(range(20)))])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        save(ds, os.path.join(d, name + ".dcm"))
    # Short native pixel data (a consistent file otherwise).
    ds = new_dataset("short_pixels", MR, H, W)
    set_pixels(ds, grey[: H // 2])
    ds.Rows = H
    save(ds, os.path.join(d, "short_pixels.dcm"))


# ------------------------------------------------------------------------------------------
# NIfTI fixtures
# ------------------------------------------------------------------------------------------
# Coded volume: voxel (x, y, z) of the canonical grid (x toward the patient's right, y toward
# anterior, z toward superior: nibabel's "RAS") holds x + 16 y + 256 z, so a test can read the
# position off every displayed voxel. Sizes differ per axis so a transposition shows.
CX, CY, CZ = 9, 11, 5
SPACING = (0.8, 0.9, 2.5)
ORIENTATIONS = ["RAS", "LAS", "LPS", "LPI", "RPI", "ALS", "PRI", "RSA", "LIP", "ASR", "PIL"]


def reorient(canonical, spacing, codes):
    """canonical: array in RAS index order; returns (stored array, affine) for axis codes."""
    base_affine = np.diag(list(spacing) + [1.0])
    base_affine[:3, 3] = [-40.0, -50.0, -20.0]
    transform = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(codes))
    stored = apply_orientation(canonical, transform)
    affine = base_affine @ inv_ornt_aff(transform, canonical.shape)
    assert nib.aff2axcodes(affine) == tuple(codes)
    return np.ascontiguousarray(stored), affine


def write_nifti(path, stored, affine, dtype, slope=None, inter=None, version=1, sform=True,
                qform=True, cal=None):
    header = nib.Nifti1Header() if version == 1 else nib.Nifti2Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(stored.shape)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    header.set_zooms(tuple(zooms) + (1.0,) * (stored.ndim - 3))
    header.set_qform(affine, code=1 if qform else 0)
    header.set_sform(affine, code=1 if sform else 0)
    if not qform:
        header["qform_code"] = 0
    if slope is not None:
        header["scl_slope"] = slope
        header["scl_inter"] = inter
    if cal is not None:
        header["cal_min"], header["cal_max"] = cal
    offset = 352 if version == 1 else 544
    header["vox_offset"] = offset
    blob = header.binaryblock + b"\0" * 4 + np.asarray(stored, dtype=dtype).tobytes(order="F")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if path.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(blob)
    else:
        with open(path, "wb") as f:
            f.write(blob)
    return blob


def head_volume(grey, slices):
    # Display slice z (axial, radiological: patient right on the image's left, anterior up) is
    # (grey + 17 z) mod 256; canonical voxel (x, y, z) is display row H-1-y, column W-1-x.
    g = grey.astype(np.int64)
    display = np.stack([(g + 17 * z) % 256 for z in range(slices)])        # [z][row][col]
    return np.ascontiguousarray(display[:, ::-1, ::-1].transpose(2, 1, 0))  # [x][y][z]


def make_nifti(out, grey):
    d = os.path.join(out, "nifti")
    xs, ys, zs = np.meshgrid(np.arange(CX), np.arange(CY), np.arange(CZ), indexing="ij")
    coded = (xs + 16 * ys + 256 * zs).astype(np.int16)
    for codes in ORIENTATIONS:
        stored, affine = reorient(coded, SPACING, codes)
        write_nifti(os.path.join(d, "coded_%s.nii" % codes), stored, affine, np.int16)
    # qform only (sform_code 0), and an oblique one (10 degrees about z, still closest to LPS)
    stored, affine = reorient(coded, SPACING, "LPS")
    write_nifti(os.path.join(d, "coded_LPS_qform_only.nii"), stored, affine, np.int16, sform=False)
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    rot = np.eye(4)
    rot[:2, :2] = [[c, -s], [s, c]]
    write_nifti(os.path.join(d, "coded_LPS_oblique.nii"), stored, rot @ affine, np.int16)
    # No orientation at all: stored order.
    stored, affine = reorient(coded, SPACING, "RAS")
    write_nifti(os.path.join(d, "coded_RAS_no_orientation.nii"), stored, affine, np.int16,
                sform=False, qform=False)

    head = head_volume(grey, 4)  # values 0..255
    # uint8, RAS (both in-plane axes flipped for display)
    stored, affine = reorient(head, (0.9, 0.8, 3.0), "RAS")
    for ext in (".nii", ".nii.gz"):
        write_nifti(os.path.join(d, "head_uint8_RAS" + ext), stored, affine, np.uint8)
    # int16 stored 4 v - 500, scl_slope 0.25, scl_inter 125; LPS (display order as stored)
    stored, affine = reorient(head, (0.9, 0.8, 3.0), "LPS")
    for ext in (".nii", ".nii.gz"):
        write_nifti(os.path.join(d, "head_int16_LPS" + ext), 4 * stored - 500, affine, np.int16,
                    slope=0.25, inter=125.0)
    # float32 stored (v + 0.5) / 2, scl_slope 2, scl_inter -0.5; ALI: transposed, slices reversed
    stored, affine = reorient(head, (0.9, 0.8, 3.0), "ALI")
    for ext in (".nii", ".nii.gz"):
        write_nifti(os.path.join(d, "head_float32_ALI" + ext), (stored + 0.5) / 2, affine,
                    np.float32, slope=2.0, inter=-0.5)
    # NIfTI-2, uint8, LAS
    stored, affine = reorient(head, (0.9, 0.8, 3.0), "LAS")
    write_nifti(os.path.join(d, "head_nifti2_LAS.nii"), stored, affine, np.uint8, version=2)
    # 4-D: three volumes; the first is the head, the others its inverse and half
    stored, affine = reorient(head, (0.9, 0.8, 3.0), "LPS")
    four = np.stack([stored, 255 - stored, stored // 2], axis=-1)
    write_nifti(os.path.join(d, "head4d_int16_LPS.nii.gz"), four, affine, np.int16)

    # float64 values a float cannot hold, NaN and infinities: shown as 0, with a note
    special = np.array([1e300, -1e300, np.nan, np.inf, -np.inf, 5.0, -7.5, 1e30], dtype=np.float64)
    write_nifti(os.path.join(d, "float64_special.nii"), special.reshape(2, 2, 2), np.eye(4), np.float64)

    e = os.path.join(out, "errors")
    write_nifti(os.path.join(e, "huge_dims.nii.gz"), np.zeros((2, 2, 1)), np.eye(4), np.int16)
    patch_dims(os.path.join(e, "huge_dims.nii.gz"), (30000, 30000, 1))
    write_nifti(os.path.join(e, "huge_voxels.nii.gz"), np.zeros((2, 2, 2)), np.eye(4), np.int16)
    patch_dims(os.path.join(e, "huge_voxels.nii.gz"), (8000, 8000, 4000))
    # NIfTI-2 dims are 64-bit: 2^32 + 5 columns (5 once cut to wasm's 32-bit size_t).
    header = nib.Nifti2Header()
    header.set_data_dtype(np.uint8)
    header.set_data_shape((2 ** 32 + 5, 2, 1))
    header["vox_offset"] = 544
    with open(os.path.join(e, "nifti2_huge_dims.nii"), "wb") as f:
        f.write(header.binaryblock + b"\0" * 4 + bytes(range(64)))
    # NIfTI-2 with dim[0] = 1000 (nifti_clib's converter would write past dim[8])
    header = nib.Nifti2Header()
    header.set_data_dtype(np.uint8)
    header.set_data_shape((2, 2, 2))
    header["vox_offset"] = 544
    raw = bytearray(header.binaryblock)
    raw[16:24] = (1000).to_bytes(8, "little")  # dim[0]: after sizeof_hdr, magic, datatype, bitpix
    with open(os.path.join(e, "nifti2_bad_dim0.nii"), "wb") as f:
        f.write(bytes(raw) + b"\0" * 4 + bytes(range(8)))
    # NIfTI-2 (64-bit vox_offset): 2^40, far past the end of a small file
    header = nib.Nifti2Header()
    header.set_data_dtype(np.uint8)
    header.set_data_shape((2, 2, 2))
    header["vox_offset"] = 2 ** 40
    with open(os.path.join(e, "vox_offset_beyond.nii"), "wb") as f:
        f.write(header.binaryblock + b"\0" * 4 + bytes(range(8)))
    blob = write_nifti(os.path.join(e, "truncated.nii"), 4 * stored - 500, affine, np.int16)
    with open(os.path.join(e, "truncated.nii"), "wb") as f:
        f.write(blob[: 352 + (len(blob) - 352) // 2])
    with open(os.path.join(e, "truncated.nii.gz"), "wb") as f:
        whole = gzip.compress(blob)
        f.write(whole[: len(whole) // 2])


def patch_dims(path, dims):
    # Rewrites dim[1..3] of a (gzipped) NIfTI-1 header, keeping its few bytes of data.
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    header = nib.Nifti1Header.from_fileobj(__import__("io").BytesIO(raw[:348]))
    dim = header["dim"].copy()
    dim[0] = 3
    dim[1:4] = dims
    header["dim"] = dim
    raw = header.binaryblock + raw[348:]
    with (gzip.open(path, "wb") if path.endswith(".gz") else open(path, "wb")) as f:
        f.write(raw)


# ------------------------------------------------------------------------------------------
# Fuzz seeds: tiny files, same makers
# ------------------------------------------------------------------------------------------
def make_seeds(corpus):
    dd = os.path.join(corpus, "fuzz_dicom")
    nd = os.path.join(corpus, "fuzz_nifti")
    os.makedirs(dd, exist_ok=True)
    os.makedirs(nd, exist_ok=True)
    # 16 x 6: Debian's gdcmconv 3.0.21 --j2k corrupts its heap on images under 16 columns.
    tiny = (np.arange(16 * 6).reshape(6, 16) * 2 + 3).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "tiny8.dcm")
        ds = new_dataset("seed8", MR, 6, 16)
        set_pixels(ds, tiny)
        window(ds, 128, 256)
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.ImagePositionPatient = ["0", "0", "0"]
        ds.RescaleSlope = "2"
        ds.RescaleIntercept = "-3"
        save(ds, src)
        shutil.copy(src, os.path.join(dd, "explicit_le.dcm"))
        for name, conv in TRANSFER_SYNTAXES.items():
            if name in ("explicit_le", "j2k_lossy", "jpeg_extended8"):
                continue
            convert(conv, src, os.path.join(dd, name + ".dcm"))
        ds = new_dataset("seed16s", MR, 5, 7)
        set_pixels(ds, (np.arange(35).reshape(5, 7) * 900 - 15000).astype(np.int16), bits_stored=16,
                   signed=True)
        save(ds, os.path.join(dd, "int16.dcm"))
        ds = new_dataset("seed12", MR, 5, 7)
        set_pixels(ds, (np.arange(35).reshape(5, 7) * 100).astype(np.uint16), bits_stored=12)
        ds.PhotometricInterpretation = "MONOCHROME1"
        save(ds, os.path.join(dd, "uint12_mono1.dcm"))
        ds = new_dataset("seedmf", SC_MULTIFRAME_BYTE, 4, 5, modality="OT")
        set_pixels(ds, (np.arange(40).reshape(2, 4, 5) * 6).astype(np.uint8))
        ds.NumberOfFrames = 2
        save(ds, os.path.join(dd, "multiframe.dcm"))
        run("dcmcrle", os.path.join(dd, "multiframe.dcm"), os.path.join(dd, "multiframe_rle.dcm"))
        rgb = (np.arange(4 * 6 * 3).reshape(4, 6, 3) * 3).astype(np.uint8)
        ds = new_dataset("seedrgb", SC, 4, 6, modality="OT")
        set_pixels(ds, rgb, photometric="RGB")
        save(ds, os.path.join(dd, "rgb.dcm"))
        run("dcmcjpeg", "+eb", os.path.join(dd, "rgb.dcm"), os.path.join(dd, "rgb_jpeg_ybr422.dcm"))
        ds = new_dataset("seedybr", SC, 4, 6, modality="OT")
        set_pixels(ds, ybr_full(rgb), photometric="YBR_FULL", planar=1)
        ds.PixelData = np.ascontiguousarray(ybr_full(rgb).transpose(2, 0, 1)).tobytes()
        save(ds, os.path.join(dd, "ybr_full_planar1.dcm"))
        ds = new_dataset("seedraw", MR, 6, 16)
        set_pixels(ds, tiny)
        write_raw(ds, os.path.join(dd, "raw_dataset.dcm"))
    xs, ys, zs = np.meshgrid(np.arange(4), np.arange(3), np.arange(2), indexing="ij")
    coded = (xs + 4 * ys + 12 * zs)
    for codes, dtype, ext in (("RAS", np.uint8, ".nii"), ("LPS", np.int16, ".nii"),
                              ("ALI", np.float32, ".nii"), ("RSA", np.int16, ".nii.gz")):
        stored, affine = reorient(coded, (1.0, 1.5, 2.0), codes)
        write_nifti(os.path.join(nd, "%s_%s%s" % (np.dtype(dtype).name, codes, ext)), stored, affine,
                    dtype, slope=1.5 if dtype == np.int16 else None, inter=2.0, cal=(0, 20))
    stored, affine = reorient(coded, (1.0, 1.5, 2.0), "LAS")
    write_nifti(os.path.join(nd, "nifti2_uint8.nii"), stored, affine, np.uint8, version=2)
    write_nifti(os.path.join(nd, "int16_4d.nii"), np.stack([stored, stored * 2], axis=-1), affine,
                np.int16)


def main(argv):
    seeds = None
    if len(argv) == 3 and argv[1] == "--seeds":
        seeds = argv[2]
    elif len(argv) != 2 or argv[1].startswith("-"):
        sys.exit("usage: make-fixtures OUT_DIR | make-fixtures --seeds CORPUS_DIR")
    if seeds:
        make_seeds(seeds)
        return
    out = os.path.abspath(argv[1])
    partial = out + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    grey = head_image(W, H)
    rgb = colour_image(CW, CH)
    write_pnm(os.path.join(partial, "grey.pgm"), grey)
    write_pnm(os.path.join(partial, "colour.ppm"), rgb)
    with tempfile.TemporaryDirectory() as tmp:
        base = make_base8(partial, grey, tmp)
    for name, conv in TRANSFER_SYNTAXES.items():
        convert(conv, base, os.path.join(partial, "dicom", "ts", name + ".dcm"))
    make_bits(partial, grey)
    make_bits_ts(partial)
    make_simple_variants(partial, grey)
    make_colour(partial, rgb)
    make_series(partial, grey)
    make_dicomdir(partial, base)
    make_errors(partial, base, grey)
    make_nifti(partial, grey)
    # Complete: the tests look for this file (a half-made folder from an interrupted run is not
    # taken for fixtures).
    with open(os.path.join(partial, "COMPLETE"), "w") as f:
        f.write("made by tests/scans/make-fixtures\n")
    shutil.rmtree(out, ignore_errors=True)
    os.rename(partial, out)


if __name__ == "__main__":
    main(sys.argv)
