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

/// Writes `args` and a line end to standard output, with any control character but line
/// ends and tabs written as an escape ([`for_terminal`]).
pub fn write_line(args: std::fmt::Arguments) -> std::io::Result<()> {
    use std::io::Write;
    let line = args.to_string();
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(for_terminal(&line).as_bytes())?;
    stdout.write_all(b"\n")
}

/// `text` with every control character written as Rust writes it in a string (`\n`,
/// `\u{1b}`): what a name read from outside (a folder, a file) looks like on one line of
/// output or in a page, where it can neither fake a line nor drive the terminal.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(text, |_| true)
}

/// `text` as it may reach a terminal: [`printable`], but line ends and tabs kept, for
/// output of several lines.
pub fn for_terminal(text: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(text, |c| c != '\n' && c != '\t')
}

fn escape_controls(text: &str, escaped: fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    let escape = |c: char| c.is_control() && escaped(c);
    if !text.chars().any(escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match escape(c) {
            true => out.extend(c.escape_default()),
            false => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `n` and `noun`, plural unless `n` is 1: "1 epoch", "2 epochs".
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// `x` as short as it reads back exactly: as Rust writes it (`0.001`), or in scientific
/// notation where that is much shorter (`1e300`, not 301 digits).
pub fn number(x: f64) -> String {
    let (plain, scientific) = (x.to_string(), format!("{x:e}"));
    match plain.len() > scientific.len() + 4 {
        true => scientific,
        false => plain,
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

/// A bar over `len` items of work described by `what` ("decoding images"), on stdout;
/// hidden unless `visible` and stdout is a terminal.
pub(crate) fn count_bar(len: u64, what: &str, visible: bool) -> ProgressBar {
    if !interactive(!visible) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stdout());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30.cyan/blue}] {pos}/{len}  {per_sec}  ETA {eta}",
        )
        .expect("the template is ours and valid")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
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

    #[test]
    fn numbers_are_as_short_as_they_read_back() {
        for (x, shown) in [
            (0.001, "0.001"),
            (1e300, "1e300"),
            (0.3333, "0.3333"),
            (2e-9, "2e-9"),
        ] {
            assert_eq!(number(x), shown);
            assert_eq!(number(x).parse::<f64>().unwrap(), x);
        }
    }

    #[test]
    fn control_characters_are_shown_as_escapes() {
        assert_eq!(printable("runs/a\nb\u{1b}[31m"), "runs/a\\nb\\u{1b}[31m");
        assert_eq!(printable("plain ünïcode"), "plain ünïcode");
        assert_eq!(for_terminal("two\nlines\t\u{7}"), "two\nlines\t\\u{7}");
    }
}
