//! Run folders shared between people, and sweeps handed to schedulers: nothing a reader
//! did not make is read blindly or overwritten. A run folder here is hostile: scripts in
//! its pictures, pipes and endless files named like its files, odd bytes in its name, the
//! files of other runs and programs beside it. Every case runs the real binaries.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{args, run_bin, run_within, stderr, stdout, write_synthetic};
use fashion_tch::run_dir::config::FORMAT_VERSION;
use fashion_tch::{run_dir, tensorboard};

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");
const EVALUATE: &str = env!("CARGO_BIN_EXE_evaluate");
const PREDICT: &str = env!("CARGO_BIN_EXE_predict");
const COMPARE: &str = env!("CARGO_BIN_EXE_compare");
const EXPORT: &str = env!("CARGO_BIN_EXE_export");
const SWEEP: &str = env!("CARGO_BIN_EXE_sweep");

/// Long enough for any of these commands on the synthetic data; a hang fails the test.
const LIMIT: Duration = Duration::from_secs(60);

/// A folder with the synthetic dataset in `data/`.
fn dataset() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    (tmp, data)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `bin` with `args` (any bytes), failing the test past [`LIMIT`].
fn run(bin: &str, args: &[&OsStr]) -> Output {
    run_within(bin, args, LIMIT)
}

fn os<'a>(args: &[&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

/// A small dense run (16 hidden units, one epoch unless `extra` says) trained into
/// `run_folder`, which may have any name; `extra` flags after.
fn dense_run(data: &Path, run_folder: &Path, extra: &[&str]) -> Output {
    let mut argv = os(&["--data-dir", s(data), "--device", "cpu", "--hidden", "16"]);
    if !extra.contains(&"--epochs") {
        argv.extend([OsStr::new("--epochs"), OsStr::new("1")]);
    }
    argv.extend([OsStr::new("--out"), run_folder.as_os_str()]);
    argv.extend(extra.iter().map(OsStr::new));
    let out = run(DENSE, &argv);
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The page as XML, which it must be, whatever the run folder held.
fn parse(html: &str) -> roxmltree::Document<'_> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(html, options)
        .unwrap_or_else(|e| panic!("report.html is not well-formed: {e}"))
}

/// The page `page` as headless Chromium leaves it once its scripts have run: its DOM,
/// which it prints into a file in `scratch` (it is larger than a pipe holds).
fn rendered(browser: &Path, page: &Path, scratch: &Path) -> String {
    let dom = scratch.join("dom.html");
    let mut chromium = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--user-data-dir={}", scratch.join("profile").display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .stdout(fs::File::create(&dom).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while chromium.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            chromium.kill().unwrap();
            panic!("chromium was still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    fs::read_to_string(dom).unwrap()
}

#[test]
fn report_html_runs_no_script_it_was_handed_and_stays_well_formed() {
    let (tmp, data) = dataset();
    // a folder name with markup, quotes, a line end and a terminal escape in it
    let name = "run <b>&\"quoted'\n\u{1b}[31mred";
    let folder = tmp.path().join(name);
    let trained = dense_run(&data, &folder, &[]);
    assert!(
        !stdout(&trained).contains('\u{1b}'),
        "an escape sequence reached the terminal: {}",
        stdout(&trained)
    );
    assert!(
        stdout(&trained).contains(r"\u{1b}[31mred"),
        "{}",
        stdout(&trained)
    );
    // someone's curves.svg with a script, and one cut off
    let hostile = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>document.title=\"PWNED\"\
                   </script><text>PWNED</text></svg>";
    for curves in [hostile, "<svg><g><text>cut off"] {
        fs::write(folder.join("curves.svg"), curves).unwrap();
        let out = run(
            EVALUATE,
            &[folder.as_os_str(), "--data-dir".as_ref(), data.as_os_str()],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let html = fs::read_to_string(folder.join("report.html")).unwrap();
        let doc = parse(&html);
        assert!(
            !html.contains("PWNED") && !html.contains("<script"),
            "{html:.300}"
        );
        let title = doc.descendants().find(|n| n.has_tag_name("title")).unwrap();
        assert_eq!(
            title.text(),
            Some("run <b>&\"quoted'\\n\\u{1b}[31mred · fashion-tch")
        );
        // every picture is an image of data, where no script runs
        let images: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("img"))
            .collect();
        assert!(images.len() >= 3, "{} pictures", images.len());
        for img in images {
            let src = img.attribute("src").unwrap();
            assert!(src.starts_with("data:image/svg+xml;base64,"), "{src:.60}");
        }
    }
    // what a browser makes of it: the script never ran
    let Some(browser) = common::test_tool("chromium") else {
        return;
    };
    fs::write(folder.join("curves.svg"), hostile).unwrap();
    let out = run(
        EVALUATE,
        &[folder.as_os_str(), "--data-dir".as_ref(), data.as_os_str()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let page = tmp.path().join("page.html");
    fs::copy(folder.join("report.html"), &page).unwrap();
    let dom = rendered(&browser, &page, tmp.path());
    assert!(!dom.contains("PWNED"), "{dom:.400}");
    assert!(dom.contains("fashion-tch</title>"), "{dom:.400}");
}

#[test]
fn evaluate_never_opens_the_folders_curves_svg() {
    let (tmp, data) = dataset();
    let run_folder = tmp.path().join("run");
    dense_run(&data, &run_folder, &[]);
    // the page's curves are drawn from metrics.csv's numbers
    let curves = run_folder.join("curves.svg");
    let evaluate = || run(EVALUATE, &os(&[s(&run_folder), "--data-dir", s(&data)]));
    fs::remove_file(&curves).unwrap();
    mkfifo(&curves);
    let out = evaluate();
    assert!(out.status.success(), "{}", stderr(&out));
    fs::remove_file(&curves).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &curves).unwrap();
    let out = evaluate();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Puts something odd at `path`: a pipe, a link to a device, or a file over the bound of
/// small files.
fn make_odd(path: &Path, odd: &str) {
    match odd {
        "fifo" => mkfifo(path),
        "oversized" => fs::write(path, vec![b' '; 17 << 20]).unwrap(),
        device => std::os::unix::fs::symlink(device, path).unwrap(),
    }
}

#[test]
fn readers_refuse_pipes_devices_and_oversized_files_named_like_a_runs_files() {
    let (tmp, data) = dataset();
    let run_folder = tmp.path().join("run");
    dense_run(&data, &run_folder, &[]);
    let image = tmp.path().join("shirt.png");
    image::GrayImage::from_pixel(28, 28, image::Luma([90]))
        .save(&image)
        .unwrap();
    let (r, pt, chart) = (
        s(&run_folder),
        tmp.path().join("m.pt"),
        tmp.path().join("c.svg"),
    );
    let readers = [
        (EVALUATE, vec![r, "--data-dir", s(&data)]),
        (COMPARE, vec![r, "--out", s(&chart), "--force"]),
        (PREDICT, vec![r, s(&image)]),
        (EXPORT, vec![r, "--out", s(&pt), "--force"]),
    ];
    for file in ["config.json", "metrics.csv", "model.safetensors"] {
        let path = run_folder.join(file);
        let kept = tmp.path().join("kept");
        fs::rename(&path, &kept).unwrap();
        // the small files have a bound below a test's disk; tensors have one of 4 GiB
        let odds: &[&str] = match file {
            "model.safetensors" => &["fifo", "/dev/zero"],
            _ => &["fifo", "/dev/zero", "oversized"],
        };
        for &odd in odds {
            make_odd(&path, odd);
            let why = match odd {
                "oversized" => "bytes, more than",
                _ => "is not a regular file",
            };
            for (bin, argv) in &readers {
                if *bin == COMPARE && file == "model.safetensors" {
                    continue; // compare reads a run's figures, not its weights
                }
                let out = run(bin, &os(argv));
                let (err, name) = (stderr(&out), Path::new(bin).file_name().unwrap());
                let case = format!("{} on {file} as {odd}: {err}", name.to_string_lossy());
                assert_eq!(out.status.code(), Some(1), "{case}");
                assert!(err.contains(s(&path)) && err.contains(why), "{case}");
            }
            fs::remove_file(&path).unwrap();
        }
        fs::rename(&kept, &path).unwrap();
    }
}

#[test]
fn compare_out_replaces_a_file_only_with_force_and_a_runs_file_never() {
    let (tmp, data) = dataset();
    let (ours, other) = (tmp.path().join("ours"), tmp.path().join("other"));
    dense_run(&data, &ours, &[]);
    dense_run(&data, &other, &[]);
    let evaluated = run(EVALUATE, &os(&[s(&other), "--data-dir", s(&data)]));
    assert!(evaluated.status.success(), "{}", stderr(&evaluated));
    let events = tensorboard::event_files(&other).unwrap().remove(0);
    let mine = tmp.path().join("my-chart.svg");
    fs::write(&mine, "mine").unwrap();

    let out = run(COMPARE, &os(&[s(&ours), "--out", s(&mine)]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already exists; give --force"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_to_string(&mine).unwrap(), "mine");
    let out = run(COMPARE, &os(&[s(&ours), "--out", s(&mine), "--force"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fs::read_to_string(&mine).unwrap().starts_with("<svg"));

    // another run's files, by the trainer, by evaluate, by TensorBoard: never
    let keras = other.join("events.out.tfevents.1764547200.keras-host.7.v2");
    fs::write(&keras, "keras").unwrap();
    for theirs in [
        &events,
        &other.join("report.html"),
        &other.join("metrics.csv"),
        &keras,
    ] {
        let before = fs::read(theirs).unwrap();
        let out = run(COMPARE, &os(&[s(&ours), "--out", s(theirs), "--force"]));
        assert_eq!(out.status.code(), Some(1), "{}", theirs.display());
        assert!(
            stderr(&out).contains("one of the files of the run folder"),
            "{}",
            stderr(&out)
        );
        assert_eq!(fs::read(theirs).unwrap(), before, "{}", theirs.display());
    }
    // a name of 250 bytes, the temporary file beside it longer still
    let long = tmp.path().join(format!("{}.svg", "c".repeat(246)));
    let out = run(COMPARE, &os(&[s(&ours), "--out", s(&long)]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(long.is_file());
}

#[test]
fn export_out_never_writes_over_another_runs_files_even_with_force() {
    let (tmp, data) = dataset();
    let (ours, other) = (tmp.path().join("ours"), tmp.path().join("other"));
    dense_run(&data, &ours, &[]);
    dense_run(&data, &other, &[]);
    let evaluated = run(EVALUATE, &os(&[s(&other), "--data-dir", s(&data)]));
    assert!(evaluated.status.success(), "{}", stderr(&evaluated));
    let events = tensorboard::event_files(&other).unwrap().remove(0);
    for theirs in [
        &events,
        &other.join("report.html"),
        &other.join("curves.svg"),
    ] {
        let before = fs::read(theirs).unwrap();
        let out = run(EXPORT, &os(&[s(&ours), "--out", s(theirs), "--force"]));
        assert_eq!(out.status.code(), Some(1), "{}", theirs.display());
        assert!(
            stderr(&out).contains("one of the files of the run folder"),
            "{}",
            stderr(&out)
        );
        assert_eq!(fs::read(theirs).unwrap(), before, "{}", theirs.display());
    }
    let long = tmp.path().join(format!("{}.pt", "m".repeat(250)));
    let out = run(EXPORT, &os(&[s(&ours), "--out", s(&long)]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(long.is_file());
}

#[test]
fn sweep_clears_only_a_folder_it_proves_is_its_own() {
    let (tmp, data) = dataset();
    let sweep_dir = tmp.path().join("sweep");
    let sweep = || {
        run_bin(
            SWEEP,
            &args(
                &data,
                Some(&sweep_dir),
                &["--model", "dense", "--hidden", "16", "--epochs", "1"],
            ),
        )
    };
    // a Keras run's event file and a csv of someone's, with no config.json
    let theirs = sweep_dir.join("dense-16");
    fs::create_dir_all(&theirs).unwrap();
    let keras = "events.out.tfevents.1764547200.keras-host.7.v2";
    fs::write(theirs.join(keras), "keras").unwrap();
    fs::write(theirs.join("metrics.csv"), "epoch,loss\n").unwrap();
    let out = sweep();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(keras) && err.contains("metrics.csv"), "{err}");
    assert_eq!(
        run_dir::entries(&theirs).unwrap(),
        [keras, "metrics.csv"],
        "left as it was"
    );
    // the sweep's own run cut short, with another program's event file beside it
    fs::remove_file(theirs.join("metrics.csv")).unwrap();
    fs::remove_file(theirs.join(keras)).unwrap();
    let trained = sweep();
    assert!(trained.status.success(), "{}", stderr(&trained));
    for f in ["model.safetensors", "checkpoint.safetensors", "curves.svg"] {
        fs::remove_file(theirs.join(f)).unwrap();
    }
    fs::write(theirs.join(keras), "keras").unwrap();
    let out = sweep();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(keras), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(theirs.join(keras)).unwrap(), "keras");
}

/// The plan of a one-run dense sweep into `out`, as `sweep --plan` prints it.
fn plan(data: &Path, cwd: &Path, out: &OsStr, extra: &[&str]) -> Output {
    let mut argv = os(&["--model", "dense", "--hidden", "8", "--epochs", "1"]);
    argv.extend(os(&["--data-dir", s(data), "--device", "cpu", "--plan"]));
    let mut out_flag = std::ffi::OsString::from("--out=");
    out_flag.push(out);
    argv.push(&out_flag);
    argv.extend(os(extra));
    Command::new(SWEEP)
        .args(argv)
        .current_dir(cwd)
        .env_remove("FASHION_MNIST_DIR")
        .output()
        .unwrap()
}

#[test]
fn every_planned_line_is_one_command_that_runs_and_the_gather_finds_its_run() {
    let (tmp, data) = dataset();
    let cwd = tmp.path();
    // a folder that begins with a dash, a number that does not print exactly in binary
    let out = plan(&data, cwd, "-x".as_ref(), &["--checkpoint-every", "0.3333"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "{printed}");
    assert!(lines[0].contains("--out ./-x/dense-8 "), "{printed}");
    assert!(lines[0].contains("--checkpoint-every 0.3333 "), "{printed}");
    let ran = Command::new("sh")
        .args(["-c", lines[0]])
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}: {}", lines[0], stderr(&ran));
    assert_eq!(
        run_dir::read_metrics(&cwd.join("-x/dense-8"))
            .unwrap()
            .len(),
        1
    );
    // the gather trains nothing more: the run is there
    let mut gather = os(&[
        "--model", "dense", "--hidden", "8", "--epochs", "1", "--out=-x",
    ]);
    gather.extend(os(&["--data-dir", s(&data), "--device", "cpu"]));
    gather.extend(os(&["--checkpoint-every", "0.3333"]));
    let gathered = Command::new(SWEEP)
        .args(gather)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(gathered.status.success(), "{}", stderr(&gathered));
    assert!(
        stdout(&gathered).contains("already trained 1 epoch, skipped"),
        "{}",
        stdout(&gathered)
    );

    // paths that one line of text cannot carry are refused, named
    let odd = OsStr::from_bytes(b"runs-\xff");
    for (out_dir, why) in [(odd, "not UTF-8"), ("two\nlines".as_ref(), "line end")] {
        let refused = plan(&data, cwd, out_dir, &[]);
        assert_eq!(refused.status.code(), Some(1));
        let err = stderr(&refused);
        assert!(err.contains(why) && err.contains("--out"), "{err}");
        assert!(stdout(&refused).is_empty(), "{}", stdout(&refused));
    }
}

#[test]
fn a_resume_waits_on_no_pipe_and_restores_the_tensorboard_points_its_checkpoint_covers() {
    let (tmp, data) = dataset();
    let run_folder = tmp.path().join("run");
    dense_run(&data, &run_folder, &["--epochs", "2"]);
    // a pipe named like one of our event files, and another program's
    mkfifo(&run_folder.join("events.out.tfevents.0000000001.fashion-tch.9"));
    mkfifo(&run_folder.join("events.out.tfevents.1764547200.keras-host.7.v2"));
    // and our own file cut short, as a power cut before the fsync would have left it
    let ours = tensorboard::event_files(&run_folder).unwrap();
    let file = ours.iter().find(|p| p.is_file()).unwrap();
    let bytes = fs::read(file).unwrap();
    fs::write(file, &bytes[..bytes.len() / 3]).unwrap();
    let resume = os(&[
        "--resume",
        s(&run_folder),
        "--epochs",
        "1",
        "--data-dir",
        s(&data),
    ]);
    let out = run(DENSE, &resume);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(
        printed.contains("fashion-tch.9 is not a regular file"),
        "{printed}"
    );
    assert!(
        printed.contains("training points") && printed.contains("stay missing"),
        "{printed}"
    );
    fs::remove_file(run_folder.join("events.out.tfevents.0000000001.fashion-tch.9")).unwrap();
    // every finished epoch's figures are back, the lost steps' points named
    let scalars = tensorboard::read(&run_folder).unwrap();
    let metrics = run_dir::read_metrics(&run_folder).unwrap();
    for tag in ["epoch/test_accuracy", "epoch/seconds", "epoch/train_loss"] {
        let steps: Vec<i64> = (scalars.iter())
            .filter(|p| p.tag == tag)
            .map(|p| p.step)
            .collect();
        // 600 training images in batches of 32: 19 steps an epoch
        let expected: Vec<i64> = metrics.iter().map(|m| i64::from(m.epoch) * 19).collect();
        let mut sorted = steps.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "{tag}");
    }
}

/// A PNG whose header says `side`×`side` pixels of 16-bit RGB, with no pixels to speak of:
/// what is checked before any decoding.
fn huge_png(path: &Path, side: u32) {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = side.to_be_bytes().to_vec();
    header.extend(side.to_be_bytes());
    header.extend([16, 2, 0, 0, 0]); // 16 bits, RGB
    chunk(&mut png, b"IHDR", &header);
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut png, b"IEND", &[]);
    fs::write(path, png).unwrap();
}

#[test]
fn predict_names_each_file_it_cannot_read_on_one_line_of_its_own() {
    let (tmp, data) = dataset();
    let run_folder = tmp.path().join("run");
    dense_run(&data, &run_folder, &[]);
    let photos = tmp.path().join("photos");
    fs::create_dir_all(&photos).unwrap();
    let shirt = photos.join("two\nlines: Shirt 0.99.png");
    image::GrayImage::from_pixel(28, 28, image::Luma([90]))
        .save(&shirt)
        .unwrap();
    mkfifo(&photos.join("pipe.png"));
    let out = run(PREDICT, &os(&[s(&run_folder), s(&photos)]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "the pipe is named: {}",
        stderr(&out)
    );
    let printed = stdout(&out);
    assert_eq!(
        printed.lines().count(),
        1,
        "one line for the one image: {printed}"
    );
    assert!(
        printed.starts_with(r"photos/two\nlines") || printed.contains(r"two\nlines"),
        "{printed}"
    );
    let err = stderr(&out);
    assert!(err.contains("pipe.png is not a regular file"), "{err}");

    // a link that loops, and a picture too large to decode at its depth
    let looped = tmp.path().join("loop.png");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let out = run(PREDICT, &os(&[s(&run_folder), s(&looped)]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Too many levels of symbolic links"),
        "{}",
        stderr(&out)
    );
    let huge = tmp.path().join("huge.png");
    huge_png(&huge, 12_000);
    let out = run(PREDICT, &os(&[s(&run_folder), s(&huge)]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("12000×12000 pixels") && stderr(&out).contains("scale it down"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_config_json_from_elsewhere_is_read_as_it_says_or_refused_naming_it() {
    let (tmp, data) = dataset();
    let run_folder = tmp.path().join("run");
    dense_run(&data, &run_folder, &[]);
    let config = run_folder.join("config.json");
    let text = fs::read_to_string(&config).unwrap();
    let evaluate = || run(EVALUATE, &os(&[s(&run_folder), "--data-dir", s(&data)]));
    // saved by an editor that starts its files with a byte-order mark
    fs::write(&config, format!("\u{feff}{text}")).unwrap();
    let out = evaluate();
    assert!(out.status.success(), "{}", stderr(&out));
    // a version past 32 bits is newer, not the version it wraps to
    let version = format!("\"format_version\": {FORMAT_VERSION}");
    let newer = text.replace(&version, "\"format_version\": 4294967300");
    assert_ne!(newer, text);
    fs::write(&config, &newer).unwrap();
    let out = evaluate();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("format_version 4294967300 is newer than this fashion-tch reads"),
        "{}",
        stderr(&out)
    );
    // no threads: a resume blames the file, not a flag the user never gave
    let threads = (text.lines())
        .find(|l| l.contains("\"threads\""))
        .unwrap()
        .to_string();
    fs::write(&config, text.replace(&threads, "  \"threads\": 0,")).unwrap();
    let out = run(
        DENSE,
        &os(&[
            "--resume",
            s(&run_folder),
            "--epochs",
            "1",
            "--data-dir",
            s(&data),
        ]),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(s(&config)) && err.contains("threads is 0"),
        "{err}"
    );
    assert!(!err.contains("--threads"), "{err}");
}

#[test]
fn numbers_in_messages_read_as_given_and_negative_values_get_the_range_message() {
    let (tmp, data) = dataset();
    for (flag, value, says) in [
        ("--ema", "-0.1", "-0.1 is not from 0 to below 1"),
        ("--lr", "-1", "-1 is not above 0"),
    ] {
        let out = run_bin(DENSE, &args(&data, None, &[flag, value]));
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    let run_folder = tmp.path().join("run");
    let out = run_bin(DENSE, &args(&data, Some(&run_folder), &["--lr", "1e300"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("learning rate 1e300)") && err.contains("diverged"),
        "{err}"
    );
    assert!(!err.contains("00000000"), "{err}");
}

#[test]
fn two_gathers_of_one_sweep_at_once_speak_only_of_sweeps_flags() {
    let (tmp, data) = dataset();
    let sweep_dir = tmp.path().join("sweep");
    let argv = args(
        &data,
        Some(&sweep_dir),
        &[
            "--model", "dense", "--hidden", "8,16", "--epochs", "3", "--quiet",
        ],
    );
    let spawn = || {
        Command::new(SWEEP)
            .args(&argv)
            .env_remove("FASHION_MNIST_DIR")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let outs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    assert!(
        outs.iter().any(|o| o.status.success()),
        "one of them gathers the sweep: {} / {}",
        stderr(&outs[0]),
        stderr(&outs[1])
    );
    for out in &outs {
        let err = stderr(out);
        assert!(!err.contains("--resume"), "sweep has no --resume: {err}");
        if !out.status.success() {
            assert!(
                err.contains("being trained by another process")
                    || err.contains("run the same sweep command again"),
                "{err}"
            );
        }
    }
}
