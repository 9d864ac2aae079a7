//! Writing files so that a crash never leaves half of one: each is written to a
//! temporary file beside it, flushed to disk, and renamed over the old one. Errors name
//! the file and say what the system said ("No space left on device").

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use safetensors::tensor::{Dtype, View};
use tch::Tensor;

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // the rename itself, on disk: the folder's entry
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        fs::File::open(folder.unwrap_or(Path::new("."))).and_then(|d| d.sync_all())
    };
    let result = write().with_context(|| format!("writing {}", path.display()));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `tensors` to `path` in the safetensors format (sorted by name, each as its
/// contiguous bytes), with `metadata` in its header, atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(name, t)| Ok((name.as_str(), Bytes::of(t)?)))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("writing {}", path.display()))?;
    let bytes = safetensors::tensor::serialize(views, &metadata)
        .with_context(|| format!("encoding {}", path.display()))?;
    write_atomically(path, &bytes)
}

/// A tensor's bytes, as safetensors holds them: contiguous, on the host.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Bytes {
    fn of(t: &Tensor) -> Result<Bytes> {
        let t = t.to_device(tch::Device::Cpu).contiguous();
        let dtype = Dtype::try_from(t.kind())?;
        let mut data = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut data, t.numel())?;
        let shape = t.size().into_iter().map(|d| d as usize).collect();
        Ok(Bytes { dtype, shape, data })
    }
}

impl View for Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}
