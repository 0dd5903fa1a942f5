// Scanner files for the end-to-end tests, written at test time with Debian's pydicom and
// nibabel (scripts/setup installs python3-pydicom, python3-nibabel and python3-numpy): a
// synthetic head phantom, never real patient images. Every DICOM carries made-up identifying
// attributes ("SECRET^PATIENT", an institution, a physician, an ID) that the page must never
// show.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// Debian's python3 has the packages; a python3 earlier on PATH (pyenv) may not.
const PYTHON = process.env.NEUROLENS_PYTHON ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

export const SECRET = 'SECRET';

const SCRIPT = String.raw`
import json, os, sys
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

MR = '1.2.840.10008.5.1.4.1.1.4'
spec = json.loads(sys.argv[1])
rng = np.random.default_rng(spec.get('seed', 7))

def phantom(w, h, z, n, tumour, top=4095, dtype=np.uint16):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t = (z + 0.5) / n * 2 - 1
    s = np.sqrt(max(0.15, 1 - 0.8 * t * t))
    head = ((xx - w / 2) / (0.42 * w * s)) ** 2 + ((yy - h / 2) / (0.46 * h * s)) ** 2 <= 1
    brain = ((xx - w / 2) / (0.36 * w * s)) ** 2 + ((yy - h / 2) / (0.40 * h * s)) ** 2 <= 1
    img = np.full((h, w), 15.0)
    img[head] = 900
    img[brain] = 500 + 120 * np.sin(xx[brain] / 3.0) * np.cos(yy[brain] / 4.0)
    if tumour:
        blob = (xx - 0.6 * w) ** 2 + (yy - 0.42 * h) ** 2 <= (0.12 * w * s) ** 2
        img[blob & brain] = 1600
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, top).astype(dtype)

def identify(ds):
    ds.PatientName = 'SECRET^PATIENT'
    ds.PatientID = 'SECRET-0042'
    ds.PatientBirthDate = '19700101'
    ds.PatientSex = 'O'
    ds.InstitutionName = 'SECRET General Hospital'
    ds.InstitutionAddress = '1 SECRET Street'
    ds.ReferringPhysicianName = 'SECRET^DOCTOR'
    ds.AccessionNumber = 'SECRET77'
    ds.StudyDescription = 'SECRET study'
    ds.ImageComments = 'SECRET comment'

def mr_slice(pixels, z, series, instance, description, spacing):
    sop = generate_uid()
    ds = Dataset()
    ds.SOPClassUID = MR
    ds.SOPInstanceUID = sop
    identify(ds)
    ds.StudyInstanceUID = series['study']
    ds.SeriesInstanceUID = series['uid']
    ds.FrameOfReferenceUID = series['frame']
    ds.StudyDate = '20240102'
    ds.Modality = 'MR'
    ds.SeriesDescription = description
    ds.SeriesNumber = 3
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [-100.0, -110.0, -40.0 + z * spacing]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.9, 0.9]
    ds.SliceThickness = spacing
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = 800
    ds.WindowWidth = 1600
    ds.PixelData = pixels.tobytes()
    return ds, sop

def save(ds, sop, path, part10=True):
    if part10:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(path, write_like_original=False)
    else:  # a bare data set: no preamble, no "DICM", no file meta (implicit VR little endian)
        ds.is_little_endian, ds.is_implicit_VR = True, True
        pydicom.dcmwrite(path, ds, write_like_original=True)

def new_series():
    return {'uid': generate_uid(), 'study': generate_uid(), 'frame': generate_uid()}

out = spec['dir']
written = {}

s = spec.get('series')
if s:
    folder = os.path.join(out, s['name'])
    os.makedirs(folder, exist_ok=True)
    series = new_series()
    n, w, h = s['slices'], s['width'], s['height']
    order = rng.permutation(n)
    names = []
    for k, z in enumerate(order):
        ext = ['', '.dcm', '.IMA'][k % 3]
        names.append('%s%05d%s' % (['IM', 'X', 'MR'][k % 3], int(rng.integers(0, 99999)), ext))
    for name, z in zip(names, order):
        ds, sop = mr_slice(phantom(w, h, int(z), n, s['tumourFrom'] <= z < s['tumourTo']), float(z), series,
                           int(z) + 1, s['description'], 3.0)
        save(ds, sop, os.path.join(folder, name))
    if s.get('dicomdir'):  # a CD export's directory record file: skipped by the page
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = '1.2.840.10008.1.3.10'
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dd = Dataset()
        dd.file_meta = meta
        dd.FileSetID = 'SECRETSET'
        dd.DirectoryRecordSequence = []
        dd.is_little_endian, dd.is_implicit_VR = True, False
        dd.save_as(os.path.join(folder, 'DICOMDIR'), write_like_original=False)
    if s.get('junk'):
        with open(os.path.join(folder, s['junk']), 'wb') as f:
            f.write(b'DICM? no: this file is not a scan\n')
    written['series'] = {'folder': folder, 'files': sorted(names)}

for single in spec.get('singles', []):
    ds, sop = mr_slice(phantom(single['width'], single['height'], 0, 1, single.get('tumour', False)), 0.0,
                       new_series(), 1, single['description'], 5.0)
    path = os.path.join(out, single['name'])
    save(ds, sop, path, part10=single.get('part10', True))
    written[single['name']] = path

for nii in spec.get('niftis', []):
    import nibabel as nib
    n, w, h = nii['slices'], nii['width'], nii['height']
    vol = np.stack([phantom(w, h, z, n, nii['tumourFrom'] <= z < nii['tumourTo'], 32767, np.int16).T for z in range(n)], axis=-1)
    affine = np.diag([1.0, 1.2, 2.5, 1.0])
    img = nib.Nifti1Image(vol, affine)
    img.header.set_xyzt_units('mm')
    path = os.path.join(out, nii['name'])
    nib.save(img, path)
    written[nii['name']] = path

print(json.dumps(written))
`;

// Writes what `spec` asks for into spec.dir:
//   series: {name, slices, width, height, description, tumourFrom, tumourTo, dicomdir?, junk?}
//     a folder of single-frame MR DICOMs (Part 10, explicit VR little endian), one per slice,
//     written under shuffled names ("IM12345", "X04711.dcm", "MR00042.IMA")
//   singles: [{name, width, height, description, tumour?, part10?}] single-frame DICOMs
//     (part10 false: a bare data set without the "DICM" preamble)
//   niftis: [{name (.nii or .nii.gz), slices, width, height, tumourFrom, tumourTo}] int16 volumes
// -> {series: {folder, files}, <name>: path, ...}
export function writeScanFiles(spec) {
  fs.mkdirSync(spec.dir, { recursive: true });
  const out = execFileSync(PYTHON, ['-c', SCRIPT, JSON.stringify(spec)], { encoding: 'utf8' });
  return JSON.parse(out);
}

// Every file under dir as {name, mimeType, buffer} with its path relative to dir's parent
// ("series/IM00012"), as a folder picker gives them.
export function folderFiles(dir) {
  const base = path.dirname(dir);
  const out = [];
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.push({ path: path.relative(base, p), buffer: fs.readFileSync(p) });
    }
  };
  walk(dir);
  return out;
}
