//! `sweep --plan`: the sweep's runs as trainer commands, one a line, for GNU parallel or
//! a Slurm array. Each trains its run into its folder under the sweep folder with exactly
//! the settings the sweep would give it, so the same sweep command gathers them
//! afterwards. A line is one command that runs as it reads, or the plan is refused.

use std::path::Path;

use anyhow::{bail, Result};
use serde::Serialize;

use super::{check, size_label, Sweep};
use crate::flags::{flags_over, DataArgs, DeviceArgs, ImagesArgs, TrainArgs, CHECKPOINT_MINUTES};
use crate::models::ModelKind;
use crate::recipe::Recipe;

/// The sweep's own flags that each planned command passes on, as given: the plan is for
/// the machines that will run it, so nothing here is resolved against this one.
pub struct TrainerFlags<'a> {
    pub train: &'a TrainArgs,
    pub data: &'a DataArgs,
    pub images: &'a ImagesArgs,
    pub device: &'a DeviceArgs,
}

/// A run of a sweep as a trainer's command, for a scheduler to run.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct PlannedRun {
    /// The size, as the sweep's flags give it.
    pub size: String,
    pub seed: u64,
    /// The run folder, as the command gives it.
    pub out: String,
    /// The command's words: the trainer, then its flags.
    pub argv: Vec<String>,
    /// The same as one line for a shell, each word quoted where it needs it.
    pub command: String,
}

/// The runs of `opts` from the recipe `base` as commands of `trainer_dir`'s
/// `train_dense` or `train_cnn` (where the trainers are; `None`: on the PATH), passing on
/// the sweep's `flags`.
pub fn plan(
    opts: &Sweep,
    base: &Recipe,
    flags: &TrainerFlags,
    trainer_dir: Option<&Path>,
) -> Result<Vec<PlannedRun>> {
    check(opts, base)?;
    let mut planned = Vec::new();
    for run in opts.runs() {
        let recipe = opts.recipe(base, &run.model);
        let trainer = match run.model.kind() {
            ModelKind::Dense => "train_dense",
            ModelKind::Cnn => "train_cnn",
        };
        let trainer = match trainer_dir {
            Some(dir) => plan_path(&dir.join(trainer), "the trainer")?,
            None => trainer.to_string(),
        };
        let lesson = Recipe::lesson(run.model.kind());
        let mut argv = vec![trainer];
        argv.extend(flags_over(&recipe, &lesson).map_err(anyhow::Error::msg)?);
        argv.extend(["--epochs".into(), recipe.epochs.to_string()]);
        argv.extend(["--seed".into(), run.seed.to_string()]);
        let out = plan_path(&run.dir, "--out")?;
        argv.extend(["--out".into(), out.clone()]);
        argv.extend(passed_on(flags)?);
        argv.push("--quiet".into());
        planned.push(PlannedRun {
            size: size_label(&run.model),
            seed: run.seed,
            out,
            command: argv
                .iter()
                .map(|w| shell_word(w))
                .collect::<Vec<_>>()
                .join(" "),
            argv,
        });
    }
    Ok(planned)
}

/// The flags of `flags` that every planned command passes on.
fn passed_on(flags: &TrainerFlags) -> Result<Vec<String>> {
    let (train, data, device) = (flags.train, flags.data, flags.device);
    let mut argv = Vec::new();
    if let Some(dir) = &data.data_dir {
        argv.extend(["--data-dir".into(), plan_path(dir, "--data-dir")?]);
    }
    let images = flags.images;
    if let Some(n) = images.image_size {
        argv.extend(["--image-size".into(), n.to_string()]);
    }
    if let Some(n) = images.channels {
        argv.extend(["--channels".into(), n.to_string()]);
    }
    if let Some(share) = images.test_share {
        argv.extend(["--test-share".into(), crate::progress::number(share)]);
    }
    if images.skip_unreadable {
        argv.push("--skip-unreadable".into());
    }
    argv.extend(["--device".into(), device.device.to_string()]);
    if let Some(threads) = device.threads {
        argv.extend(["--threads".into(), threads.to_string()]);
    }
    if train.checkpoint_every != CHECKPOINT_MINUTES {
        argv.extend([
            "--checkpoint-every".into(),
            crate::progress::number(train.checkpoint_every),
        ]);
    }
    if train.no_tensorboard {
        argv.push("--no-tensorboard".into());
    }
    if train.cuda_graph {
        argv.push("--cuda-graph".into());
    }
    Ok(argv)
}

/// `path` as a planned command's word: as it is, with `./` in front of a relative path
/// that begins with `-` (which the trainer would read as a flag). Errs, naming the path
/// and `what` it is, where a plan cannot carry it: bytes that are not UTF-8 (a line of
/// text would change them), or a line end (the command would take two lines).
fn plan_path(path: &Path, what: &str) -> Result<String> {
    let shown = crate::progress::printable(&path.to_string_lossy()).into_owned();
    let Some(text) = path.to_str() else {
        bail!(
            "{what} {shown}: the path is not UTF-8, and a plan, one line of text per run, \
             would change its odd bytes; give a UTF-8 path (or run the sweep without --plan)"
        );
    };
    if text.contains(['\n', '\r']) {
        bail!(
            "{what} {shown}: the path holds a line end, and a plan has one line per run; \
             give a path without one (or run the sweep without --plan)"
        );
    }
    Ok(match text.starts_with('-') {
        true => format!("./{text}"),
        false => text.to_string(),
    })
}

/// `word` as a POSIX shell reads it back: as it is where that is safe, else in single
/// quotes.
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./,:=+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_a_shell() {
        assert_eq!(shell_word("runs/sweep/dense-64"), "runs/sweep/dense-64");
        assert_eq!(shell_word("my runs/it's"), r"'my runs/it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
