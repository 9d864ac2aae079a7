//! A recipe written back as flags: which flags turn one recipe into another (`sweep
//! --plan` writes them), and where two recipes differ, in flags (`--lr 0.001, not --lr
//! 0.002`, as a resumed run refuses what contradicts it). One table holds every setting a
//! flag sets, with its value as that flag takes it; what no flag sets makes another
//! recipe.

use crate::models::{Convs, ModelSpec, Views};
use crate::progress::number;
use crate::recipe::{Optimizer, Recipe};

/// A setting a flag sets: the flag, and a recipe's value of it as the flag takes it
/// (`None`: the setting is off, or the recipe has no such setting: no flag says it).
type Flagged = (&'static str, fn(&Recipe) -> Option<String>);

/// Every setting a flag sets, in the order of the recipe fields' names (the order in
/// which messages list them). `--epochs` is no setting here: a run may always go on.
const FLAGGED: [Flagged; 15] = [
    ("alternate-flips", |r| Some(r.alternate_flips.to_string())),
    ("batch-size", |r| Some(r.batch_size.to_string())),
    ("cutout", |r| Some(r.cutout.to_string())),
    ("early-stop", |r| r.early_stop.map(|n| n.to_string())),
    ("ema", |r| Some(number(r.ema))),
    ("label-smoothing", |r| Some(number(r.label_smoothing))),
    ("lr", |r| Some(number(r.learning_rate))),
    ("convs", |r| cnn(r).map(|c| convs_per_block(c.0, c.1))),
    ("dropout", |r| cnn(r).map(|c| number(c.2))),
    ("filters", |r| cnn(r).map(|c| comma_list(c.0))),
    ("hidden", |r| match r.model {
        ModelSpec::Dense { hidden } | ModelSpec::Cnn { hidden, .. } => Some(hidden.to_string()),
    }),
    ("views", |r| cnn(r).map(|c| c.3.to_string())),
    ("weight-decay", |r| match r.optimizer {
        Optimizer::AdamW { weight_decay } => Some(number(weight_decay)),
        Optimizer::Adam => None,
    }),
    ("precision", |r| Some(r.precision.to_string())),
    ("validation", |r| Some(r.validation_images.to_string())),
];

/// The CNN's settings that flags set: its filters, convolutions, dropout and views.
type CnnSettings<'a> = (&'a [i64], &'a Convs, f64, Views);

/// The CNN's settings of `recipe`; `None` for the dense network, which has none of them.
fn cnn(recipe: &Recipe) -> Option<CnnSettings<'_>> {
    match &recipe.model {
        ModelSpec::Cnn {
            filters,
            convs,
            dropout,
            views,
            ..
        } => Some((filters, convs, *dropout, *views)),
        ModelSpec::Dense { .. } => None,
    }
}

/// `convs` as `--convs` takes them for `filters`: one count for every block, or one per
/// block (the recipe keeps them shortened, the last count repeating).
fn convs_per_block(filters: &[i64], convs: &Convs) -> String {
    match convs.counts() {
        [one] => one.to_string(),
        _ => comma_list(
            &(0..filters.len())
                .map(|b| convs.in_block(b))
                .collect::<Vec<_>>(),
        ),
    }
}

/// What no flag sets: recipes that differ here are other recipes, even by one name.
/// Every field is named, so that a new one must be placed here or in [`FLAGGED`].
fn fixed(recipe: &Recipe) -> impl PartialEq {
    let Recipe {
        name,
        model,
        optimizer,
        schedule,
        augment,
        alternate_flips: _,
        cutout: _,
        ema: _,
        label_smoothing: _,
        batch_size: _,
        learning_rate: _,
        epochs: _,
        validation_images: _,
        early_stop: _,
        precision: _,
    } = recipe;
    let batch_norm = match model {
        ModelSpec::Cnn {
            batch_norm,
            filters: _,
            hidden: _,
            convs: _,
            dropout: _,
            views: _,
        } => *batch_norm,
        ModelSpec::Dense { hidden: _ } => false,
    };
    let adamw = matches!(optimizer, Optimizer::AdamW { .. });
    (*name, model.kind(), batch_norm, adamw, *schedule, *augment)
}

/// Where `ours` and `theirs` differ, as flags: `--lr 0.001, not --lr 0.002` for each
/// (`ours` first), `no --early-stop` for a setting that is off. Settings no flag sets
/// (batch norm, the optimiser, …) differ only with the recipe, and are named by
/// `--recipe`. `--epochs` is left out: a run may always go on for longer.
pub fn differences(ours: &Recipe, theirs: &Recipe) -> Vec<String> {
    let said = |flag: &str, value: Option<String>| match value {
        Some(v) => format!("--{flag} {v}"),
        None => format!("no --{flag}"),
    };
    let mut out = Vec::new();
    if ours.name != theirs.name {
        out.push(format!(
            "--recipe {}, not --recipe {}",
            ours.name, theirs.name
        ));
    } else if fixed(ours) != fixed(theirs) {
        out.push(format!(
            "--recipe {} as it was then, not as it is now",
            ours.name
        ));
    }
    for (flag, value) in FLAGGED {
        let (a, b) = (value(ours), value(theirs));
        if a != b {
            out.push(format!("{}, not {}", said(flag, a), said(flag, b)));
        }
    }
    out
}

/// The flags that make `base` into `recipe` (`--epochs` aside, which a run's length
/// sets): `["--hidden", "64", "--lr", "0.002"]`. Errs, naming it, where they differ in a
/// setting no flag sets or unsets.
pub fn flags_over(recipe: &Recipe, base: &Recipe) -> Result<Vec<String>, String> {
    if fixed(recipe) != fixed(base) {
        return Err(format!(
            "the recipe differs from the {} recipe in a setting no flag sets",
            base.name
        ));
    }
    let mut flags = Vec::new();
    for (flag, value) in FLAGGED {
        match (value(recipe), value(base)) {
            (a, b) if a == b => {}
            (Some(a), _) => flags.extend([format!("--{flag}"), a]),
            (None, _) => {
                return Err(format!(
                    "the recipe has no --{flag}, which the {} recipe sets, and no flag unsets it",
                    base.name
                ))
            }
        }
    }
    Ok(flags)
}

/// Counts as the flags take them: `32,64`.
pub fn comma_list(counts: &[i64]) -> String {
    counts
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{Changes, CnnArgs, RecipeArgs};
    use crate::models::ModelKind;
    use crate::recipe::RecipeName;

    /// What these flags to the CNN's trainer change.
    fn flags(args: &[&str]) -> Changes {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[arg(long, value_enum)]
            recipe: Option<RecipeName>,
            #[command(flatten)]
            settings: RecipeArgs,
            #[command(flatten)]
            model: CnnArgs,
            #[arg(long)]
            epochs: Option<u32>,
        }
        let cli = Cli::parse_from(std::iter::once("t").chain(args.iter().copied()));
        Changes {
            recipe: cli.recipe,
            settings: cli.settings,
            model: cli.model,
            epochs: cli.epochs,
        }
    }

    #[test]
    fn flags_change_a_recipe_and_differences_speak_flags() {
        let dense = flags(&["--hidden", "64", "--lr", "0.002", "--epochs", "3"]);
        let dense = dense.recipe(ModelKind::Dense).unwrap();
        assert_eq!(dense.model, ModelSpec::Dense { hidden: 64 });
        assert_eq!((dense.learning_rate, dense.epochs), (2e-3, 3));
        let lesson = Recipe::lesson(ModelKind::Dense);
        assert_eq!(
            differences(&lesson, &dense),
            [
                "--lr 0.001, not --lr 0.002",
                "--hidden 128, not --hidden 64"
            ]
        );
        let longer = Recipe {
            epochs: 50,
            ..lesson.clone()
        };
        assert!(differences(&lesson, &longer).is_empty());
        let strong = flags(&["--recipe", "strong"]);
        assert_eq!(strong.recipe(ModelKind::Cnn).unwrap(), Recipe::strong());
        let err = strong.recipe(ModelKind::Dense).unwrap_err();
        assert!(
            err.contains("no recipe 'strong' for the dense network"),
            "{err}"
        );
        let err = flags(&["--convs", "1,2,2"])
            .recipe(ModelKind::Cnn)
            .unwrap_err();
        assert!(err.contains("--convs 1,2,2 gives 3 counts"), "{err}");
        assert!(err.contains("--filters 32,64"), "{err}");
        // settings no flag sets are named by the recipe
        let other = Recipe {
            augment: false,
            ..Recipe::strong()
        };
        assert_eq!(
            differences(&Recipe::strong(), &other),
            ["--recipe strong as it was then, not as it is now"]
        );
        let patient = flags(&[
            "--recipe",
            "strong",
            "--early-stop",
            "3",
            "--views",
            "one",
            "--ema",
            "0.999",
            "--label-smoothing",
            "0.05",
        ]);
        assert_eq!(
            differences(&Recipe::strong(), &patient.recipe(ModelKind::Cnn).unwrap()),
            [
                "no --early-stop, not --early-stop 3",
                "--ema 0, not --ema 0.999",
                "--label-smoothing 0.1, not --label-smoothing 0.05",
                "--views mirror, not --views one"
            ]
        );
    }

    #[test]
    fn cutout_and_alternating_flips_need_augmented_batches() {
        for flag in [["--cutout", "4"], ["--alternate-flips", "true"]] {
            let err = flags(&flag).recipe(ModelKind::Cnn).unwrap_err();
            assert!(err.contains("does not augment"), "{flag:?}: {err}");
            let mut strong = vec!["--recipe", "strong"];
            strong.extend(flag);
            assert!(flags(&strong).recipe(ModelKind::Cnn).is_ok(), "{flag:?}");
        }
    }

    #[test]
    fn weight_decay_sets_adamw_and_only_adamw_and_dropout_reads_back() {
        let decayed = flags(&["--recipe", "strong", "--weight-decay", "0.1"])
            .recipe(ModelKind::Cnn)
            .unwrap();
        assert_eq!(decayed.optimizer, Optimizer::AdamW { weight_decay: 0.1 });
        assert_eq!(
            differences(&Recipe::strong(), &decayed),
            ["--weight-decay 0.05, not --weight-decay 0.1"]
        );
        let written = flags_over(&decayed, &Recipe::strong()).unwrap();
        assert_eq!(written, ["--weight-decay", "0.1"]);
        // --dropout, the model's, reads the same way
        let dropped = flags(&["--recipe", "strong", "--dropout", "0.2"])
            .recipe(ModelKind::Cnn)
            .unwrap();
        assert_eq!(
            differences(&Recipe::strong(), &dropped),
            ["--dropout 0.1, not --dropout 0.2"]
        );
        let err = flags(&["--weight-decay", "0.1"])
            .recipe(ModelKind::Cnn)
            .unwrap_err();
        assert!(
            err.contains("--weight-decay") && err.contains("plain Adam"),
            "{err}"
        );
    }

    #[test]
    fn flags_written_for_a_recipe_read_back_as_it() {
        // per-block counts are written out as --convs takes them, and read back the same
        let three = flags(&["--filters", "8,16,32", "--convs", "1,2,2", "--lr", "0.0003"])
            .recipe(ModelKind::Cnn)
            .unwrap();
        let lesson = Recipe::lesson(ModelKind::Cnn);
        let written = flags_over(&three, &lesson).unwrap();
        assert!(
            written.windows(2).any(|w| w == ["--convs", "1,2,2"]),
            "{written:?}"
        );
        let args: Vec<&str> = written.iter().map(String::as_str).collect();
        assert_eq!(flags(&args).recipe(ModelKind::Cnn).unwrap(), three);
        // what no flag sets cannot be written as flags
        let err = flags_over(&Recipe::strong(), &lesson).unwrap_err();
        assert!(err.contains("no flag sets"), "{err}");
    }
}
