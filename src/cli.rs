//! How a binary ends: one error line, never a panic trace; and the trainers' body, the
//! flags resolved into a run, trained, and the next commands for its folder.

use std::process::ExitCode;

use crate::flags::{self, Changes, CommonArgs};
use crate::models::ModelKind;
use crate::progress::for_terminal;
use crate::stop;
use crate::train::Interrupted;

/// A trainer binary's body: train a network of `kind` as the flags `common` and their
/// `changes` to the recipe say, then print the final test accuracy and where the run is
/// kept. Flags that cannot make a recipe together exit with status 2 and the usage of
/// `Flags`, the trainer's own, as clap's own errors do.
pub fn train_and_report<Flags: clap::CommandFactory>(
    common: &CommonArgs,
    kind: ModelKind,
    changes: &Changes,
) -> ExitCode {
    if let (None, Err(msg)) = (&common.run.resume, changes.recipe(kind)) {
        Flags::command()
            .error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit()
    }
    run(|| {
        let options = flags::resolve(common, kind, changes)?;
        let report = crate::train::train(&options)?;
        let last = (report.last()).ok_or_else(|| anyhow::anyhow!("the run has no epoch"))?;
        let best = match report.best_epoch {
            Some(b) if b != last.epoch => format!(" (epoch {b} was the best on validation)"),
            _ => String::new(),
        };
        let dir = report.run_dir.display();
        crate::out!(
            "test accuracy {:.4}{best}; run saved in {dir}",
            last.test_accuracy
        )?;
        let tensorboard = match options.tensorboard {
            true => {
                let logdir = (report.run_dir.parent())
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                format!(
                    "\n  tensorboard --logdir {}    # the curves, live (pip install tensorboard)",
                    logdir.display()
                )
            }
            false => String::new(),
        };
        crate::out!(
            "next:\n  cargo run --release --bin evaluate -- {dir}    # scores, pictures, {dir}/report.html\n  \
             cargo run --release --bin predict -- {dir} IMAGE…\n  \
             cargo run --release --bin compare -- {dir} OTHER_RUN…\n  \
             cargo run --release --bin export -- {dir}    # TorchScript for PyTorch{tensorboard}"
        )?;
        Ok(())
    })
}

/// Runs a binary's body and turns how it ended into the exit status:
/// - an error: its chain on one line, status 1;
/// - Ctrl-C: where the run stopped, status 130, as shells expect;
/// - the reader of its output went away (`… | head`): nothing more, status 141, as a
///   shell tool killed by SIGPIPE ends;
/// - a failure inside libtorch (out of memory, a driver fault), which tch reports as a
///   panic: libtorch's message on one line, status 1;
/// - a panic anywhere else is a bug of ours: Rust's own report, with its file and line
///   and, under `RUST_BACKTRACE=1`, the backtrace.
pub fn run(body: impl FnOnce() -> anyhow::Result<()> + std::panic::UnwindSafe) -> ExitCode {
    let ours = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = (payload.downcast_ref::<String>().map(String::as_str))
            .or_else(|| payload.downcast_ref::<&str>().copied());
        match text.and_then(libtorch_failure) {
            Some(message) => eprintln!("error: libtorch: {message}"),
            None => ours(info),
        }
    }));
    match std::panic::catch_unwind(body) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) if err.is::<Interrupted>() => {
            eprintln!("{}", for_terminal(&err.to_string()));
            ExitCode::from(stop::EXIT_CODE)
        }
        Ok(Err(err)) if is_broken_pipe(&err) => ExitCode::from(141),
        Ok(Err(err)) => {
            eprintln!(
                "error: {}",
                for_terminal(&crate::progress::error_text(&err))
            );
            ExitCode::FAILURE
        }
        // the hook above has told what happened
        Err(_) => ExitCode::FAILURE,
    }
}

/// libtorch's message, when a panic's text is tch unwrapping a libtorch error (its
/// `TchError::Torch`, which tch's methods without `f_` unwrap: out of memory, a driver
/// fault): the first line, without libtorch's C++ backtrace. `None` for any other panic,
/// which is a bug of ours. Where a failure is expected (weights, devices, checkpoints) we
/// call tch's `f_` methods and get a `Result` instead.
fn libtorch_failure(panic: &str) -> Option<String> {
    let (_, message) = panic.split_once("on an `Err` value: Torch(\"")?;
    // the message is Debug-quoted: its line ends are written as \n
    let first = message.split(['\n']).next().unwrap_or(message);
    let first = first.split("\\n").next().unwrap_or(first);
    Some(first.trim_end_matches("\")").to_string())
}

/// Whether `err` comes from writing to a reader that went away.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_failures_are_told_by_tchs_error_in_one_line_and_our_bugs_are_not() {
        let panic = "called `Result::unwrap()` on an `Err` value: Torch(\"DefaultCPUAllocator: \
                     not enough memory: you tried to allocate 4000000000000 bytes.\\nException \
                     raised from alloc_cpu at c10/core/impl/alloc_cpu.cpp:117\")";
        assert_eq!(
            libtorch_failure(panic).as_deref(),
            Some("DefaultCPUAllocator: not enough memory: you tried to allocate 4000000000000 bytes.")
        );
        // our own bugs keep Rust's report, wherever the checkout lies
        for ours in [
            "index out of bounds: the len is 3 but the index is 7",
            "called `Result::unwrap()` on an `Err` value: Os { code: 2 }",
        ] {
            assert_eq!(libtorch_failure(ours), None, "{ours}");
        }
    }
}
