//! `evaluate RUN` writes report.html: the run on one page, read here as a program reads
//! it (it is well-formed XML) and checked against what evaluate printed.

mod common;

use common::{run_bin, stderr, stdout, write_synthetic};

const EVALUATE: &str = env!("CARGO_BIN_EXE_evaluate");

/// A small CNN trained with images held out, then evaluated: its folder, and the test
/// accuracy evaluate printed.
fn evaluated(tmp: &std::path::Path) -> (std::path::PathBuf, String) {
    let data = tmp.join("data");
    write_synthetic(&data);
    let run = tmp.join("small-cnn");
    let trained = common::validated_cnn(&data, &run);
    assert!(
        trained.contains("report.html"),
        "the trainer points to it: {trained}"
    );
    let out = run_bin(
        EVALUATE,
        &[run.to_str().unwrap(), "--data-dir", data.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("report.html"), "{printed}");
    // "test loss 0.1234  test accuracy 0.9500"
    let accuracy = printed
        .split("test accuracy ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    (run, accuracy)
}

/// The page as XML, which it must be.
fn parse(html: &str) -> roxmltree::Document<'_> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(html, options)
        .unwrap_or_else(|e| panic!("report.html is not well-formed: {e}"))
}

/// The pictures of the page: the SVGs its `<img>` elements hold as data, each checked to
/// be one.
fn pictures(doc: &roxmltree::Document) -> Vec<String> {
    use base64::Engine as _;
    doc.descendants()
        .filter(|n| n.has_tag_name("img"))
        .map(|img| {
            let src = img.attribute("src").unwrap_or_default();
            let data = src
                .strip_prefix("data:image/svg+xml;base64,")
                .unwrap_or_else(|| panic!("an image from elsewhere: {src:.80}"));
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            String::from_utf8(bytes).unwrap()
        })
        .collect()
}

#[test]
fn evaluate_writes_a_self_contained_page_with_every_part_of_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, accuracy) = evaluated(tmp.path());
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let doc = parse(&html);
    let text = |tag: &str| -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name(tag))
            .map(|n| {
                (n.descendants().filter(|d| d.is_text()))
                    .filter_map(|d| d.text())
                    .collect::<String>()
            })
            .collect()
    };
    let headings = text("h2");
    for part in [
        "Settings",
        "Per class",
        "Training curves",
        "The first test images",
        "Confusion matrix",
        "The first layer's filters",
    ] {
        assert!(
            headings.iter().any(|h| h == part),
            "no {part}: {headings:?}"
        );
    }
    // the test figures and which weights were scored
    let figures = text("p")[0].clone();
    assert!(
        figures.contains(&format!("test accuracy {accuracy}")),
        "{figures}"
    );
    assert!(
        figures.contains("best epoch's on validation") && figures.contains("best.safetensors"),
        "{figures}"
    );
    // the settings, the per-class table with a row per class, and four pictures
    let cells = text("td");
    assert!(
        cells
            .windows(2)
            .any(|w| w[0] == "recipe.model.filters" && w[1] == "[4,8]"),
        "{cells:?}"
    );
    let rows = doc.descendants().filter(|n| n.has_tag_name("tr"));
    let class_rows = rows
        .filter(|r| {
            r.ancestors()
                .any(|a| a.attribute("class") == Some("classes"))
        })
        .count();
    assert_eq!(class_rows, 11, "a header and ten classes");
    let pictures = pictures(&doc).len();
    assert_eq!(pictures, 4, "curves, predictions, confusion, filters");
    // self-contained: nothing to fetch
    for outside in ["<script", "<link", "src=\"http", "href=\"http"] {
        assert!(!html.contains(outside), "report.html fetches {outside}");
    }
}
