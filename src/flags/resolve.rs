//! A trainer's flags turned into the plan of its run, once, before any work: the recipe
//! with the flags applied (or, with `--resume`, the run's own, which they may not
//! contradict, and what it brings along), the device, checked, the arithmetic this
//! device has, and every check the library makes again.

use anyhow::{anyhow, bail, Result};
use tch::Device;

use crate::device;
use crate::models::ModelKind;
use crate::recipe::{Precision, Recipe};
use crate::train::{Resume, TrainOptions};

use super::resume;
use super::settings::Changes;
use super::{CommonArgs, DataArgs, DeviceArgs, ImagesArgs, TrainArgs};
use crate::data;

/// The plan of a run of a network of `kind`, as the trainer's flags `common` and their
/// `changes` to the recipe say.
pub fn resolve(common: &CommonArgs, kind: ModelKind, changes: &Changes) -> Result<TrainOptions> {
    let t = &common.train;
    if t.fresh_optimizer && common.run.resume.is_none() {
        bail!("--fresh-optimizer goes with --resume DIR: it says how to go on with an old run");
    }
    let Some(run) = &common.run.resume else {
        let recipe = changes.recipe(kind).map_err(|msg| anyhow!(msg))?;
        let options = TrainOptions {
            out: common.run.out.clone(),
            ..options(t, (&common.data, &common.images), &common.device, recipe)?
        };
        options.check()?;
        return Ok(options);
    };
    let resumed = resume::plan(run, kind, changes, t.seed, t.fresh_optimizer)?;
    let mut options = TrainOptions {
        seed: resumed.config.seed,
        out: Some(run.clone()),
        resume: Some(match t.fresh_optimizer {
            true => Resume::FreshOptimizer,
            false => Resume::Exactly,
        }),
        // a run that stopped early, told to go on: patience counts afresh
        patience_from: resumed.stopped_early.map(|_| resumed.done),
        ..options(
            t,
            (&common.data, &common.images),
            &common.device,
            resumed.config.recipe.clone(),
        )?
    };
    resume::inherit(&resumed.config, &mut options)?;
    options.check()?;
    Ok(options)
}

/// The options of a new run of `recipe` as the flag groups every trainer shares say, on
/// the device they name, with the data `data` names, its images made as `images` says
/// (into a folder of its own unless `out` is set).
pub fn options(
    train: &TrainArgs,
    (data, images): (&DataArgs, &ImagesArgs),
    device: &DeviceArgs,
    recipe: Recipe,
) -> Result<TrainOptions> {
    let on = device.device.resolve()?;
    Ok(TrainOptions {
        recipe: as_device_can(recipe, on)?,
        seed: train.seed.unwrap_or(0),
        device: on,
        threads: device.threads.map(|n| n as usize),
        cuda_graph: train.cuda_graph,
        data: data::Choice {
            dir: data.data_dir.clone(),
            image_size: images.image_size,
            channels: images.channels,
            test_share: images.test_share,
            skip_unreadable: images.skip_unreadable,
            bars: crate::progress::interactive(train.quiet),
            test_only: false,
        },
        out: None,
        resume: None,
        quiet: train.quiet,
        checkpoint_minutes: train.checkpoint_every,
        tensorboard: !train.no_tensorboard,
        patience_from: None,
    })
}

/// `recipe` as `device` can train it: a bf16 recipe in float32 on a CPU without bfloat16
/// arithmetic, where libtorch would emulate it slower than float32. Says so.
fn as_device_can(recipe: Recipe, device: Device) -> Result<Recipe> {
    if recipe.precision == Precision::F32 || device::has_bf16(device) {
        return Ok(recipe);
    }
    crate::out!(
        "--precision bf16 (the strong recipe's default): this CPU has no bfloat16 arithmetic \
         (AVX-512 BF16), so the run trains in float32 (the same network and schedule, in \
         about 1.4 times the time)"
    )?;
    Ok(Recipe {
        precision: Precision::F32,
        ..recipe
    })
}
