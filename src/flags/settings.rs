//! The flags that change a recipe, declared once as clap reads them ([`RecipeArgs`], and
//! the model's in [`DenseArgs`] and [`CnnArgs`]), and applied to a recipe by typed code,
//! setting by setting ([`Changes::apply`]): a new setting is a field here, a field of
//! [`Recipe`], a line of `apply`, and a row of the table that writes recipes back as
//! flags (`table.rs`); the compiler finds any it misses.

use crate::models::{Convs, ModelKind, ModelSpec, Views, CONVS_PER_BLOCK};
use crate::recipe::{Optimizer, Precision, Recipe, RecipeName};

use super::parse::{convs, filters, non_negative_f64, positive_f64, share};
use super::table::comma_list;

/// The flags that change a recipe's training settings. `None`: not given.
#[derive(clap::Args, Clone, Debug, Default, PartialEq)]
pub struct RecipeArgs {
    /// Images per optimisation step [default: 32; 128 with --recipe strong]
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,

    /// Adam's learning rate, above 0; with --recipe strong, the peak of its one-cycle
    /// schedule [default: 0.001; 0.005 with --recipe strong]
    #[arg(long = "lr", allow_negative_numbers = true, value_parser = positive_f64)]
    pub learning_rate: Option<f64>,

    /// Training images held out (the last N, fewer than the training set) and scored
    /// every epoch, to choose settings on without looking at the test set; 0 trains on
    /// all of them (the final fit, once settings are chosen); the best epoch's weights are
    /// kept in best.safetensors [default: 0; 5000 with --recipe strong]
    #[arg(long = "validation", allow_negative_numbers = true, value_name = "N")]
    pub validation_images: Option<u32>,

    /// Stop when the validation accuracy has not improved for N epochs, and say so (the
    /// best epoch's weights are in best.safetensors); needs images held out (--validation)
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub early_stop: Option<u32>,

    /// The share of each label spread evenly over the classes, from 0 (plain
    /// labels) to below 1; the training loss only [default: 0; 0.1 with --recipe strong]
    #[arg(long, allow_negative_numbers = true, value_name = "SHARE", value_parser = share)]
    pub label_smoothing: Option<f64>,

    /// AdamW's weight decay: each step shrinks the weights by this share of the learning
    /// rate, apart from the gradient; 0 or more; AdamW only (--recipe strong)
    /// [default: 0.05 with --recipe strong]
    #[arg(long, allow_negative_numbers = true, value_name = "DECAY", value_parser = non_negative_f64)]
    pub weight_decay: Option<f64>,

    /// Keep an exponential moving average of the weights, moving a share 1 - DECAY of the
    /// way to the trained weights after every step, and use it for validation, testing
    /// and the saved weights (model.safetensors, best.safetensors); from 0 (none) to below
    /// 1: 0.999 averages over about the last 1,000 steps [default: 0]
    #[arg(long, allow_negative_numbers = true, value_name = "DECAY", value_parser = share)]
    pub ema: Option<f64>,

    /// With augmentation (--recipe strong): mirror each training image in every other
    /// epoch, in the odd or the even ones as a draw from the seed decides for it, instead
    /// of at random every time [default: false]
    #[arg(long, value_name = "true|false")]
    pub alternate_flips: Option<bool>,

    /// With augmentation (--recipe strong): zero a square of PIXELS × PIXELS at a random
    /// place in each training image (cutout), at most the images' side; 0 for none
    /// [default: 0]
    #[arg(long, allow_negative_numbers = true, value_name = "PIXELS", value_parser = clap::value_parser!(u32).range(0..))]
    pub cutout: Option<u32>,

    /// The training step's arithmetic: f32, or bf16 (autocast runs matrix products and
    /// convolutions in bfloat16; the weights, the optimiser, the loss and the scoring stay
    /// float32). A CUDA GPU or a CPU with AVX-512 BF16 only; elsewhere the run says so and
    /// trains in f32 [default: f32, bf16 with --recipe strong]
    #[arg(long, value_enum, value_name = "f32|bf16")]
    pub precision: Option<Precision>,
}

/// The flag that shapes the dense network. `None`: not given.
#[derive(clap::Args, Clone, Debug, Default, PartialEq)]
pub struct DenseArgs {
    /// Units in the hidden layer [default: 128]
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
    pub hidden: Option<i64>,
}

/// The flags that shape the CNN. `None`: not given.
#[derive(clap::Args, Clone, Debug, Default, PartialEq)]
pub struct CnnArgs {
    /// Filters of each convolution block, e.g. 32,64 (one to four blocks)
    /// [default: 32,64]
    // the full path keeps clap from reading Vec as "the flag repeated"
    #[arg(long, allow_negative_numbers = true, value_parser = filters)]
    pub filters: Option<std::vec::Vec<i64>>,
    /// Convolutions in each block, each followed by its ReLU (and batch norm): one count
    /// for every block, or one per block, e.g. 1,2 [default: 1; 1,2 with --recipe strong]
    #[arg(long, allow_negative_numbers = true, value_parser = convs)]
    pub convs: Option<std::vec::Vec<i64>>,
    /// Score each image as the average of the network's logits over these views of it
    /// (test-time augmentation), in validation, testing, evaluate, predict and export:
    /// one (the image alone), mirror (and its mirror image: 2 passes), shifted (both,
    /// and both shifted a pixel up-left and down-right: 6 passes)
    /// [default: one; mirror with --recipe strong]
    #[arg(long, value_enum, value_name = "one|mirror|shifted")]
    pub views: Option<Views>,
    /// Units in the hidden dense layer [default: 128; 256 with --recipe strong]
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
    pub hidden: Option<i64>,
    /// The share of each dense layer's inputs dropped at random in each training step
    /// (dropout), from 0 (none) to below 1 [default: 0; 0.1 with --recipe strong]
    #[arg(long, allow_negative_numbers = true, value_name = "SHARE", value_parser = share)]
    pub dropout: Option<f64>,
}

impl From<&DenseArgs> for CnnArgs {
    /// The dense network's flag among the model's flags: `--hidden` alone.
    fn from(dense: &DenseArgs) -> CnnArgs {
        CnnArgs {
            hidden: dense.hidden,
            ..CnnArgs::default()
        }
    }
}

/// What a trainer's flags change in a recipe: `--recipe`, the settings, the model's
/// flags (the dense network's is `hidden` alone) and `--epochs`. `None`: not given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    /// `--recipe`; `None`: the lesson's, or a resumed run's own.
    pub recipe: Option<RecipeName>,
    pub settings: RecipeArgs,
    pub model: CnnArgs,
    pub epochs: Option<u32>,
}

impl Changes {
    /// The recipe `--recipe` names (the lesson's when not given) for a network of
    /// `kind`, with every flag's change. Errs with a message that names the flags.
    pub fn recipe(&self, kind: ModelKind) -> Result<Recipe, String> {
        self.apply(&Recipe::named(self.recipe.unwrap_or_default(), kind)?)
    }

    /// `base` with every change (`--recipe` aside), checked.
    pub fn apply(&self, base: &Recipe) -> Result<Recipe, String> {
        let (s, mut recipe) = (&self.settings, base.clone());
        set(&mut recipe.batch_size, s.batch_size.map(|n| n as usize));
        set(&mut recipe.learning_rate, s.learning_rate);
        set(&mut recipe.validation_images, s.validation_images);
        set(&mut recipe.label_smoothing, s.label_smoothing);
        set(&mut recipe.ema, s.ema);
        set(&mut recipe.alternate_flips, s.alternate_flips);
        set(&mut recipe.cutout, s.cutout);
        set(&mut recipe.precision, s.precision);
        set(&mut recipe.epochs, self.epochs);
        if let Some(n) = s.early_stop {
            recipe.early_stop = Some(n);
        }
        if let Some(decay) = s.weight_decay {
            let Optimizer::AdamW { weight_decay } = &mut recipe.optimizer else {
                return Err(
                    "--weight-decay sets AdamW's decay, and this recipe trains with \
                            plain Adam (only train_cnn --recipe strong trains with AdamW)"
                        .into(),
                );
            };
            *weight_decay = decay;
        }
        self.apply_to_model(&mut recipe.model)?;
        recipe.check()?;
        Ok(recipe)
    }

    fn apply_to_model(&self, model: &mut ModelSpec) -> Result<(), String> {
        let m = &self.model;
        match model {
            ModelSpec::Dense { hidden } => {
                if m.filters.is_some()
                    || m.convs.is_some()
                    || m.views.is_some()
                    || m.dropout.is_some()
                {
                    return Err("--filters, --convs, --views and --dropout shape the CNN; \
                                the dense network has --hidden alone"
                        .into());
                }
                set(hidden, m.hidden);
            }
            ModelSpec::Cnn {
                filters,
                hidden,
                convs,
                views,
                dropout,
                batch_norm: _,
            } => {
                set(filters, m.filters.clone());
                set(hidden, m.hidden);
                set(views, m.views);
                set(dropout, m.dropout);
                if let Some(counts) = &m.convs {
                    if counts.is_empty() || counts.iter().any(|n| !CONVS_PER_BLOCK.contains(n)) {
                        return Err("--convs: each block needs 1 to 4 convolutions".into());
                    }
                    // one count for every block, or one per block
                    if counts.len() > 1 && counts.len() != filters.len() {
                        let which = match m.filters {
                            Some(_) => "",
                            None => " (the default)",
                        };
                        return Err(format!(
                            "--convs {} gives {} counts for the {} blocks of --filters {}{which}: \
                             give one count per block, or one for all",
                            comma_list(counts),
                            counts.len(),
                            filters.len(),
                            comma_list(filters),
                        ));
                    }
                    *convs = Convs::new(counts.clone());
                }
            }
        }
        Ok(())
    }
}

/// Sets `field` to `value` where a flag gave one.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

/// What `train_cnn --help` says of `--recipe`: the strong recipe's summary, made from its
/// values.
pub fn recipe_help() -> String {
    format!(
        "lesson: the lesson's network and settings. strong: {} [default: lesson]",
        Recipe::strong().summary()
    )
}
