//! Ctrl-C, for the whole process: the first press asks the running step to finish and
//! the run to save a checkpoint and stop; a second quits at once (the last checkpoint
//! stays valid, since every file is replaced atomically). A signal handler belongs to the
//! process, not to one run: `ctrlc` takes one handler per process, so `sweep`'s later
//! runs would otherwise lose Ctrl-C.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static STOP: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();

/// The status a process ends with after Ctrl-C, as shells expect (128 + SIGINT).
pub(crate) const EXIT_CODE: u8 = 130;

/// Installs the handler, once per process; later calls do nothing.
pub fn install() {
    HANDLER.call_once(|| {
        // Fails only when something else in the process took SIGINT first; Ctrl-C then
        // does what that handler does.
        let _ = ctrlc::set_handler(|| {
            if STOP.swap(true, Ordering::SeqCst) {
                // at once: no destructors run under the main thread, which may be inside
                // libtorch; files are replaced atomically, so the last checkpoint holds
                // SAFETY: _exit ends the process without touching its state.
                unsafe { libc::_exit(i32::from(EXIT_CODE)) }
            }
            eprintln!(
                "\nCtrl-C: saving a checkpoint after this step (press it again to quit at \
                 once; the last checkpoint stays valid)"
            );
        });
    });
}

/// Whether Ctrl-C was pressed.
pub(crate) fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
