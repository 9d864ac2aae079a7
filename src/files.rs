//! Files, read and written as a folder someone else handed us can hold them:
//! - read: only regular files, and no more than a bound, so that a pipe, a device or a
//!   link to `/dev/zero` named like a run's file never hangs a reader or fills its memory
//!   (`read_regular`);
//! - written: so that a crash never leaves half of one, each written to a temporary file
//!   beside it, flushed to disk, and renamed over the old one (`replace_with`).
//!
//! Errors name the file and say what the system said ("No space left on device").

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use safetensors::tensor::{Dtype, View};
use tch::Tensor;

/// The most a reader takes of a file that should be small: `config.json`, `metrics.csv`,
/// a picture, a lock file.
pub(crate) const SMALL_FILE: u64 = 16 << 20;
/// The most a reader takes of a file of tensors (weights, a checkpoint) or of events.
pub(crate) const LARGE_FILE: u64 = 4 << 30;

/// The bytes of the regular file `path`, at most `limit` of them. A pipe, socket,
/// device or folder of that name is refused before anything waits on it (it is opened
/// without blocking, and checked once open), and so is a file larger than `limit`.
pub(crate) fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file (a folder, pipe, socket or device), so it is not read",
            path.display()
        );
    }
    if meta.len() > limit {
        bail!(
            "{} is {} bytes, more than the {limit} bytes such a file may have, so it is not \
             read",
            path.display(),
            meta.len(),
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // a file that grows while it is read still stops at the bound
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        bytes.len() as u64 <= limit,
        "{} grew past {limit} bytes as it was read, so it is not read",
        path.display()
    );
    Ok(bytes)
}

/// [`read_regular`], with `None` when there is no file of that name.
pub(crate) fn read_regular_if_any(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    match read_regular(path, limit) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `err` says that a file is not there.
pub(crate) fn is_not_found(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// The text of the regular file `path`, at most `limit` bytes of UTF-8 (a byte-order mark
/// at its start left out, as editors on Windows write one).
pub(crate) fn read_regular_text(path: &Path, limit: u64) -> Result<String> {
    let bytes = read_regular(path, limit)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

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
            .prefix(&format!(".{}.", temporary_stem(&name)))
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

/// The part of a file's name that its temporary file's name takes: the whole of it, or
/// of a long one its first 200 bytes, so that the temporary's name (12 bytes longer)
/// stays within the 255 bytes a file name may have.
fn temporary_stem(name: &str) -> &str {
    let mut end = name.len().min(200);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Whether `name` is one of the temporary files [`replace_with`] makes for a file named
/// `target` (left behind only when the process was killed while writing it).
pub(crate) fn is_temporary_of(name: &str, target: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_prefix(temporary_stem(target)))
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
