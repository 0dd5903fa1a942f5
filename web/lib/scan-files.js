// Which dropped files are scans (DICOM, NIfTI) rather than images, from their first bytes and
// name: a DICOM Part-10 preamble ("DICM" at 128), a NIfTI-1/2 header, a name ending in .nii or
// .nii.gz, or a CD export's DICOMDIR. Small on purpose: the page loads it up front, the viewer
// and the scan module only when a scan arrives. A raw DICOM data set without the preamble is
// not recognised here; its image decode fails with "not an image" and the scan module gets a try.

const ascii = (bytes, at, text) => [...text].every((c, i) => bytes[at + i] === c.charCodeAt(0));

// -> 'dicom' | 'dicomdir' | 'nifti' | null (an image, or something else for the decoder to judge)
export async function scanKind(file, path = file.name) {
  const name = path.split('/').pop();
  if (name.toUpperCase() === 'DICOMDIR') return 'dicomdir';
  if (/\.nii(\.gz)?$/i.test(name)) return 'nifti';
  const bytes = new Uint8Array(await file.slice(0, 352).arrayBuffer());
  if (bytes.length >= 132 && ascii(bytes, 128, 'DICM')) return 'dicom';
  const view = new DataView(bytes.buffer);
  const size = (le) => (bytes.length >= 4 ? view.getInt32(0, le) : 0);
  const sizes = [size(true), size(false)];
  if (bytes.length >= 348 && sizes.includes(348) && (ascii(bytes, 344, 'n+1\0') || ascii(bytes, 344, 'ni1\0'))) return 'nifti';
  if (bytes.length >= 8 && sizes.includes(540) && (ascii(bytes, 4, 'n+2\0') || ascii(bytes, 4, 'ni2\0'))) return 'nifti';
  return null;
}
