//! Writing files so that a crash never leaves half of one: each is written to a
//! temporary file beside it, flushed to disk, and renamed over the old one. Errors name
//! the file and say what the system said ("No space left on device").

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, View};
use tch::Tensor;

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_with(path, |tmp| fs::write(tmp, bytes).map_err(Into::into))
}

/// Replaces `path` with what `write` puts into the temporary path it is given: a file of
/// its own, with a name no other writer uses, in `path`'s folder, flushed to disk and then
/// renamed over `path`. Two programs writing one file never break each other (the last
/// rename wins), and a failure leaves the old file and no temporary one.
pub(crate) fn replace_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if !folder.is_dir() {
        bail!(
            "writing {}: the folder {} does not exist",
            path.display(),
            folder.display()
        );
    }
    let done = (|| -> Result<()> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            // as a plain create would make it (0o666 less the umask), not the owner-only
            // default of temporary files: PyTorch and other users read these
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(folder)?;
        write(tmp.path())?;
        fs::File::open(tmp.path())?.sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        // the rename itself, on disk: the folder's entry
        fs::File::open(folder)?.sync_all()?;
        Ok(())
    })();
    done.with_context(|| format!("writing {}", path.display()))
}

/// Whether `name` is one of the temporary files [`replace_with`] makes for a file named
/// `target` (left behind only when the process was killed while writing it).
pub(crate) fn is_temporary_of(name: &str, target: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_prefix(target))
        .is_some_and(|rest| rest.starts_with('.') && rest.ends_with(".tmp"))
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
