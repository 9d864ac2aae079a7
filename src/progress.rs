//! What a binary shows as it works: indicatif bars on a terminal (nothing when output
//! goes to a file or `--quiet` is given), its lines of output through [`out!`](crate::out), which
//! returns an error rather than panicking when the reader has gone away, and how counts
//! and errors read.

/// `println!` that returns the `io::Result` (a closed pipe is an `ErrorKind::BrokenPipe`
/// error, which [`crate::cli::run`] ends quietly on) instead of panicking.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::progress::write_line(format_args!($($arg)*))
    };
}

/// Writes `args` and a line end to standard output.
pub fn write_line(args: std::fmt::Arguments) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(args)?;
    stdout.write_all(b"\n")
}

/// `n` and `noun`, plural unless `n` is 1: "1 epoch", "2 epochs".
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// An error and its causes on one line, each joined by ": ", leaving out a cause that
/// says again what the one before it said (the `image` crate's errors repeat their
/// source: "Invalid PNG signature.: Invalid PNG signature.").
pub(crate) fn error_text(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.last().is_some_and(|last| last.ends_with(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// libtorch's message in a tch error, without its C++ backtrace: the first line.
pub(crate) fn libtorch_text(e: &tch::TchError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether bars should be drawn: stdout is a terminal and the user did not ask for quiet.
pub(crate) fn interactive(quiet: bool) -> bool {
    !quiet && std::io::stdout().is_terminal()
}

/// A bar over one epoch's batches; hidden unless `visible`.
pub(crate) fn epoch_bar(batches: u64, prefix: String, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(batches), ProgressDrawTarget::stdout());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30.cyan/blue}] {pos}/{len} batches  {msg}  ETA {eta}",
        )
        .expect("the template is ours and valid")
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// A byte-counting bar for a download, on stderr; hidden when stderr is not a terminal.
pub(crate) fn bytes_bar(len: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("the template is ours and valid")
            .progress_chars("=> "),
    );
    bar.set_message(format!("downloading {what}"));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_errors_read_as_english() {
        assert_eq!(count(1u32, "epoch"), "1 epoch");
        assert_eq!(count(0u32, "epoch"), "0 epochs");
        let err = anyhow::anyhow!("Invalid PNG signature.")
            .context("Invalid PNG signature.")
            .context("a.png is not a readable image");
        assert_eq!(
            error_text(&err),
            "a.png is not a readable image: Invalid PNG signature."
        );
    }
}
