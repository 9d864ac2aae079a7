//! Writing files so that a crash never leaves half of one: each is written to a
//! temporary file beside it, flushed to disk, and renamed over the old one. Errors name
//! the file and say what the system said ("No space left on device").

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
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
    let bytes = safetensors::tensor::serialize(views, &None)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| match metadata {
            Some(metadata) => with_metadata(&bytes, metadata),
            None => Ok(bytes),
        })
        .with_context(|| format!("encoding {}", path.display()))?;
    write_atomically(path, &bytes)
}

/// The safetensors file `bytes` with `metadata` in its header, in the order of its keys:
/// safetensors writes them in a `HashMap`'s order, which changes from one process to the
/// next, and a run resumed must write the very bytes of one never stopped.
fn with_metadata(bytes: &[u8], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let corrupt = || anyhow::anyhow!("safetensors wrote a header it cannot have");
    let size: [u8; 8] = bytes.get(..8).ok_or_else(corrupt)?.try_into()?;
    let end = 8 + usize::try_from(u64::from_le_bytes(size))?;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..end).ok_or_else(corrupt)?)?;
    let sorted: BTreeMap<String, String> = metadata.into_iter().collect();
    header.insert("__metadata__".into(), serde_json::to_value(sorted)?);
    let mut json = serde_json::to_vec(&header)?;
    // the data that follows starts 8-byte aligned, as safetensors pads it
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - end);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[end..]);
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_safetensors_file_with_metadata_has_the_same_bytes_every_time_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let tensors = vec![
            ("b".to_string(), Tensor::from_slice(&[1.0f32, 2.0, 3.0])),
            ("a".to_string(), Tensor::from_slice(&[7i64])),
        ];
        let write = |name: &str| {
            // a new HashMap each time: its order of keys is drawn afresh
            let metadata: HashMap<String, String> = ["epoch", "weights", "x", "y", "z"]
                .iter()
                .map(|k| (k.to_string(), format!("{k}!")))
                .collect();
            let path = dir.path().join(name);
            write_safetensors(&path, &tensors, Some(metadata)).unwrap();
            fs::read(path).unwrap()
        };
        let first = write("0.safetensors");
        for i in 1..8 {
            assert!(
                write(&format!("{i}.safetensors")) == first,
                "file {i} differs"
            );
        }
        let (_, header) = safetensors::SafeTensors::read_metadata(&first).unwrap();
        assert_eq!(header.metadata().as_ref().unwrap()["weights"], "weights!");
        let back = Tensor::read_safetensors(dir.path().join("0.safetensors")).unwrap();
        let b = back.iter().find(|(n, _)| n == "b").unwrap();
        assert!(b.1.equal(&tensors[0].1));
        let header_len = u64::from_le_bytes(first[..8].try_into().unwrap());
        assert_eq!(header_len % 8, 0, "the data stays 8-byte aligned");
    }
}
