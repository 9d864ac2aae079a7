//! TensorBoard event files, written as a run trains, so that `tensorboard --logdir runs`
//! shows every run live. Written here rather than with a crate: the format is small (a
//! record framing with CRC-32C checksums around protobuf `Event` messages, of which we
//! write four fields), while `tboard`, the crate by tch's author, generates its protobuf
//! code with `prost-build`, which needs the `protoc` compiler at build time and would add
//! a dozen crates to every fresh build.
//!
//! Each training session (a new run, or a resumed one) writes a file of its own,
//! `events.out.tfevents.<seconds>.fashion-tch.<n>`; files of other names (another
//! program's, in a folder shared with it) are neither read nor counted nor removed. A resumed session starts its file
//! with TensorBoard's "session start" at the step it goes on from: TensorBoard then drops
//! whatever an interrupted session wrote from that step on, so the curves go on without
//! a seam and without duplicate points ([`read`] does the same). A file cut off by a
//! crash is readable up to its last whole record.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The start of every event file's name, which TensorBoard looks for.
pub(crate) const PREFIX: &str = "events.out.tfevents.";

/// An event file being written.
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl EventWriter {
    /// Starts a new event file in the run folder `run`: its version record and, for a
    /// session that goes on from `resumed_at` (the last step done), a session start at
    /// the next step.
    pub fn create(run: &Path, resumed_at: Option<i64>) -> Result<EventWriter> {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let sessions = event_files(run)?.len();
        let path = run.join(format!("{PREFIX}{seconds:010}.fashion-tch.{sessions}"));
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let mut writer = EventWriter {
            path,
            file: BufWriter::new(file),
        };
        writer.record(&event(0, Field::Bytes(3, b"brain.Event:2".to_vec())))?;
        if let Some(step) = resumed_at {
            // SessionLog { status: START (1) } as Event.session_log (field 7)
            writer.record(&event(
                step + 1,
                Field::Message(7, vec![Field::Varint(1, 1)]),
            ))?;
        }
        writer.flush()?;
        Ok(writer)
    }

    /// A scalar `value` named `tag` at `step`.
    pub fn scalar(&mut self, step: i64, tag: &str, value: f64) -> Result<()> {
        let value = Field::Message(
            1,
            vec![
                Field::Bytes(1, tag.as_bytes().to_vec()),
                Field::Float(2, value as f32),
            ],
        );
        self.record(&event(step, Field::Message(5, vec![value])))
    }

    /// A text (markdown) named `tag` at `step`, for TensorBoard's text plugin.
    pub fn text(&mut self, step: i64, tag: &str, markdown: &str) -> Result<()> {
        let plugin = Field::Message(1, vec![Field::Bytes(1, b"text".to_vec())]);
        let tensor = Field::Message(
            8,
            vec![
                Field::Varint(1, 7), // DT_STRING
                Field::Message(2, vec![]),
                Field::Bytes(8, markdown.as_bytes().to_vec()),
            ],
        );
        let value = Field::Message(
            1,
            vec![
                Field::Bytes(1, tag.as_bytes().to_vec()),
                Field::Message(9, vec![plugin]),
                tensor,
            ],
        );
        self.record(&event(step, Field::Message(5, vec![value])))
    }

    /// Puts what is written so far into the file, for TensorBoard to read.
    pub fn flush(&mut self) -> Result<()> {
        self.file
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// [`EventWriter::flush`], and on to the disk: before a checkpoint that records the
    /// steps these points are of, so that a power cut cannot keep the one without the
    /// other.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.file
            .get_ref()
            .sync_data()
            .with_context(|| format!("writing {}", self.path.display()))
    }

    /// One record: its length, the length's masked CRC, the event, the event's.
    fn record(&mut self, event: &[u8]) -> Result<()> {
        let len = (event.len() as u64).to_le_bytes();
        let mut bytes = Vec::with_capacity(event.len() + 16);
        bytes.extend_from_slice(&len);
        bytes.extend_from_slice(&masked_crc(&len).to_le_bytes());
        bytes.extend_from_slice(event);
        bytes.extend_from_slice(&masked_crc(event).to_le_bytes());
        self.file
            .write_all(&bytes)
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// fashion-tch's event files in `run`, oldest first: the regular files of its names
/// (`is_ours`).
pub fn event_files(run: &Path) -> Result<Vec<PathBuf>> {
    let (mut files, _) = named_like_ours(run)?;
    files.sort();
    Ok(files)
}

/// What in `run` has the name of one of fashion-tch's event files but is not a regular
/// file (a pipe, a device, a folder), and so is never read.
pub fn not_regular(run: &Path) -> Result<Vec<PathBuf>> {
    Ok(named_like_ours(run)?.1)
}

/// The entries of `run` named like fashion-tch's event files: the regular files, and the
/// others.
fn named_like_ours(run: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    Ok(fs::read_dir(run)
        .with_context(|| format!("reading the folder {}", run.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_ours(&p.file_name().unwrap_or_default().to_string_lossy()))
        .partition(|p| p.is_file()))
}

/// Whether `name` is that of an event file this program writes:
/// `events.out.tfevents.<seconds>.fashion-tch.<n>`.
pub(crate) fn is_ours(name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once(".fashion-tch."))
        .is_some_and(|(seconds, n)| digits(seconds) && digits(n))
}

/// A scalar read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    pub step: i64,
    pub tag: String,
    pub value: f32,
}

/// The scalars of the run in `run`, as TensorBoard shows them: every file oldest first,
/// and at a session start, what earlier sessions wrote from its step on dropped. A
/// record cut off at the end of a file ends that file; a damaged one is an error.
pub fn read(run: &Path) -> Result<Vec<Scalar>> {
    let mut scalars: Vec<Scalar> = Vec::new();
    for path in event_files(run)? {
        let bytes = crate::files::read_regular(&path, crate::files::LARGE_FILE)?;
        let mut at = 0;
        while at + 12 <= bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into()?) as usize;
            let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into()?);
            if crc != masked_crc(&bytes[at..at + 8]) {
                bail!(
                    "{} is damaged at byte {at}: a record's length fails its check",
                    path.display()
                );
            }
            let Some(end) = (at + 12).checked_add(len).filter(|e| e + 4 <= bytes.len()) else {
                break; // cut off by a crash
            };
            let event = &bytes[at + 12..end];
            let crc = u32::from_le_bytes(bytes[end..end + 4].try_into()?);
            if crc != masked_crc(event) {
                bail!(
                    "{} is damaged at byte {at}: a record fails its check",
                    path.display()
                );
            }
            let (step, started, values) =
                decode(event).with_context(|| format!("{} at byte {at}", path.display()))?;
            if started {
                scalars.retain(|s| s.step < step);
            }
            scalars.extend(
                values
                    .into_iter()
                    .map(|(tag, value)| Scalar { step, tag, value }),
            );
            at = end + 4;
        }
    }
    Ok(scalars)
}

/// A protobuf field, by number, as we write them.
enum Field {
    Varint(u32, u64),
    Double(u32, f64),
    Float(u32, f32),
    Bytes(u32, Vec<u8>),
    Message(u32, Vec<Field>),
}

/// An `Event` at `step`, stamped with the time, holding `what`.
fn event(step: i64, what: Field) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    encode(&[Field::Double(1, now), Field::Varint(2, step as u64), what])
}

fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        match field {
            Field::Varint(n, v) => {
                varint(&mut out, u64::from(n << 3));
                varint(&mut out, *v);
            }
            Field::Double(n, v) => {
                varint(&mut out, u64::from(n << 3 | 1));
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Float(n, v) => {
                varint(&mut out, u64::from(n << 3 | 5));
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Bytes(n, bytes) => {
                varint(&mut out, u64::from(n << 3 | 2));
                varint(&mut out, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
            Field::Message(n, inner) => {
                let bytes = encode(inner);
                varint(&mut out, u64::from(n << 3 | 2));
                varint(&mut out, bytes.len() as u64);
                out.extend_from_slice(&bytes);
            }
        }
    }
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The first `n` bytes of `bytes`, which move past them.
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if bytes.len() < n {
        bail!("a field runs past its message");
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

/// The fields of a protobuf message: (number, varint value, bytes).
fn fields(mut bytes: &[u8]) -> Result<Vec<(u32, u64, &[u8])>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes)?;
        let (number, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => out.push((number, read_varint(&mut bytes)?, &[][..])),
            1 => out.push((number, 0, take(&mut bytes, 8)?)),
            5 => out.push((number, 0, take(&mut bytes, 4)?)),
            2 => {
                let n = read_varint(&mut bytes)? as usize;
                out.push((number, 0, take(&mut bytes, n)?));
            }
            _ => bail!("wire type {wire} is not one TensorBoard events use"),
        }
    }
    Ok(out)
}

fn read_varint(bytes: &mut &[u8]) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&b, rest)) = bytes.split_first() else {
            bail!("a number runs past its message");
        };
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    bail!("a number is longer than 64 bits")
}

/// An event read back: its step, whether it starts a session, and its scalars (tag,
/// value).
type Decoded = (i64, bool, Vec<(String, f32)>);

fn decode(event: &[u8]) -> Result<Decoded> {
    let (mut step, mut started, mut values) = (0, false, Vec::new());
    for (number, varint, bytes) in fields(event)? {
        match number {
            2 => step = varint as i64,
            7 => started = fields(bytes)?.iter().any(|f| f.0 == 1 && f.1 == 1),
            5 => {
                for (_, _, value) in fields(bytes)?.into_iter().filter(|f| f.0 == 1) {
                    let (mut tag, mut simple) = (String::new(), None);
                    for (n, _, b) in fields(value)? {
                        match n {
                            1 => tag = String::from_utf8_lossy(b).into_owned(),
                            2 => simple = Some(f32::from_le_bytes(b.try_into()?)),
                            _ => {}
                        }
                    }
                    if let Some(v) = simple {
                        values.push((tag, v));
                    }
                }
            }
            _ => {}
        }
    }
    Ok((step, started, values))
}

/// CRC-32C (Castagnoli) of `bytes`, masked as TFRecord files store it.
fn masked_crc(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    let crc = !crc;
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // the CRC-32C of "123456789" is 0xE3069283; masked as TFRecord stores it
        let crc: u32 = 0xE306_9283;
        assert_eq!(
            masked_crc(b"123456789"),
            crc.rotate_right(15).wrapping_add(0xa282_ead8)
        );
    }

    #[test]
    fn scalars_read_back_and_a_resumed_session_drops_what_it_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = EventWriter::create(dir.path(), None).unwrap();
        for step in 1..=6 {
            first.scalar(step, "loss", 1.0 / step as f64).unwrap();
        }
        first.text(0, "settings", "`--lr 0.001`").unwrap();
        first.flush().unwrap();
        drop(first);
        // a crash mid-record: the file ends with half a record
        let path = &event_files(dir.path()).unwrap()[0];
        let mut bytes = fs::read(path).unwrap();
        bytes.extend_from_slice(&[9, 0, 0]);
        fs::write(path, bytes).unwrap();
        // the checkpoint was at step 4: steps 5 and 6 are trained again
        let mut second = EventWriter::create(dir.path(), Some(4)).unwrap();
        for step in 5..=8 {
            second.scalar(step, "loss", 1.0 / step as f64).unwrap();
        }
        second.flush().unwrap();
        let steps: Vec<i64> = read(dir.path()).unwrap().iter().map(|s| s.step).collect();
        assert_eq!(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(event_files(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn only_our_own_event_files_are_ours() {
        assert!(is_ours("events.out.tfevents.1764547200.fashion-tch.0"));
        assert!(is_ours("events.out.tfevents.0000000012.fashion-tch.13"));
        for theirs in [
            "events.out.tfevents.1764547200.keras-host.12.v2",
            "events.out.tfevents.1764547200.fashion-tch.",
            "events.out.tfevents.x.fashion-tch.0",
            ".events.out.tfevents.1.fashion-tch.0.abc.tmp",
            "events.out.tfevents.1.fashion-tch.0.tmp",
        ] {
            assert!(!is_ours(theirs), "{theirs}");
        }
    }
}
