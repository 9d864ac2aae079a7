//! `--cuda-graph`: the training step captured once as a CUDA graph and replayed for every
//! batch of its size, one launch in place of the many small kernels a step launches one
//! by one, which is what a fast GPU waits on at the lesson's batch of 32.
//!
//! PyTorch's recipe ("whole-network capture" in its CUDA notes): a few eager steps on a
//! side stream set up what libraries create lazily; the capture records one step on fixed
//! input buffers without running it; each batch after is copied into those buffers and the
//! graph replayed. Adam reads its step count and learning rate from the device
//! ([`Adam::for_cuda_graph`](crate::optim::Adam::for_cuda_graph)), so they move between
//! replays. What the step takes as a plain number stays as captured, which is why a
//! schedule that moves Adam's β₁ is refused (`train`).

use anyhow::Result;
use tch::{Device, Tensor};

use crate::shim::CudaGraph;

/// Eager steps on the side stream before the capture, as in PyTorch's examples.
const WARM_UP_STEPS: u32 = 3;

/// The training step, run eagerly until captured, then replayed.
pub(crate) struct GraphedStep {
    // before the graph, so its tensors go before the memory pool they live in
    captured: Option<Captured>,
    graph: CudaGraph,
    warm_up_left: u32,
    /// The batches captured: the recipe's size (an epoch's last may be smaller).
    batch_size: i64,
}

/// The captured step's fixed memory: the batch it reads, the loss and logits it writes.
struct Captured {
    xs: Tensor,
    ys: Tensor,
    loss: Tensor,
    logits: Tensor,
}

impl GraphedStep {
    /// A step for batches of `batch_size` on `device`. Errs where CUDA graphs are not to
    /// be had: see [`CudaGraph::new`].
    pub(crate) fn new(device: Device, batch_size: usize) -> Result<GraphedStep> {
        Ok(GraphedStep {
            captured: None,
            graph: CudaGraph::new(device)?,
            warm_up_left: WARM_UP_STEPS,
            batch_size: batch_size as i64,
        })
    }

    /// One training step on images `xs` and labels `ys`. `step` is the step itself
    /// (forward, loss, backward, update), returning the loss and the logits: run as it is
    /// while warming up, and for a batch of another size (an epoch's last); captured on
    /// the first full batch after; replayed on a copy of the batch from then on.
    pub(crate) fn run(
        &mut self,
        xs: &Tensor,
        ys: &Tensor,
        step: impl FnOnce(&Tensor, &Tensor) -> Result<(Tensor, Tensor)>,
    ) -> Result<(Tensor, Tensor)> {
        if self.warm_up_left > 0 {
            self.warm_up_left -= 1;
            return self.graph.on_side_stream(|| step(xs, ys));
        }
        if xs.size()[0] != self.batch_size {
            return step(xs, ys);
        }
        let captured = match self.captured.take() {
            Some(mut c) => {
                c.xs.copy_(xs);
                c.ys.copy_(ys);
                c
            }
            None => {
                // recorded, not run: the replay below takes this batch's step
                let (xs, ys) = (xs.copy(), ys.copy());
                let (loss, logits) = self.graph.capture(|| step(&xs, &ys))?;
                Captured {
                    xs,
                    ys,
                    loss,
                    logits,
                }
            }
        };
        self.graph.replay()?;
        let out = (
            captured.loss.shallow_clone(),
            captured.logits.shallow_clone(),
        );
        self.captured = Some(captured);
        Ok(out)
    }
}
