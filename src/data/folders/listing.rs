//! Which files a folder of images holds, of which class, in which split: the two
//! layouts, the class folders, the images in each (hidden files and folders, and links to
//! folders, skipped), and the fixed order they are read in.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

/// One image file and its class.
#[derive(Clone, Debug)]
pub(super) struct Labelled {
    pub(super) path: PathBuf,
    pub(super) label: i64,
}

/// The classes of `dir` and its training and test images, by its layout; the test share
/// where it was drawn.
pub(super) type Found = (Vec<String>, Vec<Labelled>, Vec<Labelled>, Option<f64>);

pub(super) fn find(dir: &Path, test_share: Option<f64>) -> Result<Found> {
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    if train_dir.is_dir() != test_dir.is_dir() {
        let (has, lacks) = match train_dir.is_dir() {
            true => ("train", "test"),
            false => ("test", "train"),
        };
        bail!(
            "{} has {has}/ but no {lacks}/: give {lacks}/CLASS/… beside it (a folder named \
             otherwise, such as val/, is not read as one), or put the class folders in {} \
             itself, and a share of each is held out (--test-share)",
            dir.display(),
            dir.display()
        );
    }
    if train_dir.is_dir() && test_dir.is_dir() {
        if let Some(share) = test_share {
            bail!(
                "--test-share {share}: {} has train/ and test/ folders, whose split is \
                 theirs; --test-share is for a folder of class folders alone (drop it)",
                dir.display()
            );
        }
        let classes = class_names(&train_dir)?;
        let test_classes = class_folders(&test_dir)?;
        ensure!(
            test_classes == classes,
            "{} has the classes {} and {} the classes {}; they must be the same",
            train_dir.display(),
            classes.join(", "),
            test_dir.display(),
            match test_classes.is_empty() {
                true => "(none)".to_string(),
                false => test_classes.join(", "),
            }
        );
        let train = labelled(&train_dir, &classes)?;
        let test = labelled(&test_dir, &classes)?;
        return Ok((classes, train, test, None));
    }
    let test_share = test_share.unwrap_or(crate::data::DEFAULT_TEST_SHARE);
    let classes = class_names(dir)?;
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let mut files = images_of(&dir.join(class), label as i64)?;
        ensure!(
            files.len() >= 2,
            "the class folder {} holds one image; with class folders alone each class needs \
             two or more, some to train on and some to test (--test-share {test_share}), or \
             give train/ and test/ folders",
            dir.join(class).display()
        );
        shuffle(&mut files);
        let held = ((files.len() as f64 * test_share).round() as usize)
            .clamp(usize::from(test_share > 0.0), files.len().saturating_sub(1));
        test.extend(files.drain(..held));
        train.extend(files);
    }
    Ok((classes, train, test, Some(test_share)))
}

/// The class folders of `dir`, sorted: its folders that are not hidden. Errs, naming
/// `dir`, where there are fewer than two.
fn class_names(dir: &Path) -> Result<Vec<String>> {
    let names = class_folders(dir)?;
    match names.len() {
        0 => bail!(
            "{} holds no class folders: put each class's images in a folder of its own \
             (<class>/…, or train/<class>/… and test/<class>/…)",
            dir.display()
        ),
        1 => bail!(
            "{} holds one class folder only ({}); a network needs two classes or more to \
             tell apart",
            dir.display(),
            names[0]
        ),
        _ => Ok(names),
    }
}

/// The names of the folders in `dir` that are not hidden, sorted. Errs, naming it, on a
/// name that is not UTF-8 (class names are written into config.json and the reports).
fn class_folders(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for path in visible_entries(dir)?.into_iter().filter(|p| p.is_dir()) {
        let name = path.file_name().unwrap_or_default();
        let Some(name) = name.to_str() else {
            bail!(
                "the class folder {} has a name that is not UTF-8; rename it (class names \
                 are written into config.json and the reports)",
                path.display()
            );
        };
        names.push(name.to_string());
    }
    names.sort();
    Ok(names)
}

/// Every image of `classes`' folders in `dir`, labelled by class.
fn labelled(dir: &Path, classes: &[String]) -> Result<Vec<Labelled>> {
    let mut all = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        all.extend(images_of(&dir.join(class), label as i64)?);
    }
    Ok(all)
}

/// The PNG and JPEG files in the class folder `dir` and its folders, sorted, labelled
/// `label`; hidden files and folders, and links to folders, skipped. Errs, naming the folder, where there is
/// none.
pub(super) fn images_of(dir: &Path, label: i64) -> Result<Vec<Labelled>> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for path in visible_entries(&folder)? {
            // a link to a folder is not followed (as Keras does not): it could loop, or
            // bring in another class's images
            let linked = path
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink());
            if path.is_dir() {
                if !linked {
                    folders.push(path);
                }
            } else if is_image_name(&path) {
                found.push(path);
            }
        }
    }
    ensure!(
        !found.is_empty(),
        "the class folder {} holds no PNG or JPEG images; every class needs some",
        dir.display()
    );
    found.sort();
    Ok(found
        .into_iter()
        .map(|path| Labelled { path, label })
        .collect())
}

/// The SHA-256 (in hex) of the training and test images' labels and paths within `dir`,
/// in their order.
pub(super) fn list_digest(dir: &Path, train: &[Labelled], test: &[Labelled]) -> String {
    use sha2::{Digest, Sha256};
    let mut sha = Sha256::new();
    for (split, images) in [("train", train), ("test", test)] {
        for image in images {
            let path = image.path.strip_prefix(dir).unwrap_or(&image.path);
            sha.update(format!("{split}\0{}\0", image.label));
            sha.update(path.as_os_str().as_encoded_bytes());
            sha.update(b"\n");
        }
    }
    crate::data::hex(&sha.finalize())
}

/// Whether `path` is named as a PNG or JPEG file is.
pub(super) fn is_image_name(path: &Path) -> bool {
    let extension = path.extension().map(|e| e.to_string_lossy().to_lowercase());
    matches!(extension.as_deref(), Some("png" | "jpg" | "jpeg"))
}

/// The entries of the folder `dir` whose names do not begin with a dot.
pub(crate) fn visible_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading the folder {}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading the folder {}", dir.display()))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            paths.push(entry.path());
        }
    }
    Ok(paths)
}

/// Shuffles `images` by a draw seeded by their paths alone (SplitMix64 from a fixed
/// seed, a Fisher-Yates shuffle of them sorted), so that the same files always come out
/// in the same order.
pub(super) fn shuffle(images: &mut [Labelled]) {
    images.sort_by(|a, b| a.path.cmp(&b.path));
    let mut state: u64 = 0x5eed_f01d_e25f_0000;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..images.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        images.swap(i, j);
    }
}
