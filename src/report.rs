//! `report.html`: one run whole on one page, which `evaluate` writes into the run folder:
//! the test figures and which weights were scored, the settings, the training curves,
//! the per-class table, the confusion matrix, the predictions and (for a CNN) the
//! filters. It is the pictures and tables the project already makes, put together in a
//! single self-contained file that opens offline in any browser, and well-formed XML, so
//! a program can read it too.
//!
//! A run folder may come from someone else, so the page pastes in nothing it was handed:
//! its text is escaped (control characters too, which XML cannot hold), and its pictures,
//! drawn by `evaluate` itself, go in as `<img>` data, where no script in an SVG runs and
//! no markup in one can break the page.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use base64::Engine as _;
use serde_json::Value;

use crate::files::write_atomically;
use crate::run_dir::RunConfig;
use crate::score::Report;

/// What the page shows of one evaluation.
pub struct Page<'a> {
    pub run: &'a Path,
    pub config: &'a RunConfig,
    pub report: &'a Report,
    /// The weights scored, and their epoch.
    pub weights: &'a Path,
    pub epoch: u32,
    /// The folder of the test images scored.
    pub data: &'a Path,
    /// The pictures, in the order shown: a heading each, and its SVG.
    pub pictures: Vec<(&'static str, &'a str)>,
}

impl Page<'_> {
    /// Writes the page into the run folder; returns its path.
    pub fn write(&self) -> Result<PathBuf> {
        let path = self.run.join(crate::run_dir::REPORT);
        write_atomically(&path, self.html().as_bytes())?;
        Ok(path)
    }

    fn html(&self) -> String {
        let name = self.run.file_name().unwrap_or_default().to_string_lossy();
        let r = self.report;
        let file = self
            .weights
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        let which = match file == crate::run_dir::BEST_WEIGHTS {
            true => "the best epoch's on validation",
            false => "the last epoch's",
        };
        let mut body = format!(
            "<h1>{}</h1>\n<p class=\"figures\">test accuracy <b>{:.4}</b>, test loss {:.4}, \
             scoring {which} weights: epoch {} (<code>{}</code>), on the test images of \
             <code>{}</code></p>\n",
            escape(&name),
            r.accuracy,
            r.loss,
            self.epoch,
            escape(&file),
            escape(&self.data.to_string_lossy()),
        );
        body += &format!("<h2>Settings</h2>\n{}", settings_table(self.config));
        body += "<h2>Per class</h2>\n";
        body += &self.per_class_table();
        for (heading, svg) in &self.pictures {
            let _ = write!(
                body,
                "<h2>{}</h2>\n{}",
                escape(heading),
                image(heading, svg)
            );
        }
        format!(
            "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n\
             <head>\n<meta charset=\"utf-8\"/>\n<title>{} · fashion-tch</title>\n\
             <style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
            escape(&name)
        )
    }

    fn per_class_table(&self) -> String {
        let mut t = String::from(
            "<table class=\"classes\">\n<tr><th>class</th><th>precision</th><th>recall</th>\
             <th>accuracy</th><th>images</th></tr>\n",
        );
        for c in &self.report.per_class {
            let _ = writeln!(
                t,
                "<tr><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
                escape(&c.class),
                c.precision,
                c.recall,
                c.accuracy,
                c.support
            );
        }
        t + "</table>\n"
    }
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;\
color:#222}table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;\
padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}\
.figures{font-size:1.2em}img{max-width:100%;height:auto}";

/// The config's settings, a row each (`recipe.model.hidden`: 128).
fn settings_table(config: &RunConfig) -> String {
    fn rows(prefix: &str, value: &Value, out: &mut String) {
        match value {
            Value::Object(fields) => {
                for (name, value) in fields {
                    rows(&format!("{prefix}{name}."), value, out);
                }
            }
            value => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td></tr>",
                    escape(prefix.trim_end_matches('.')),
                    escape(&text)
                );
            }
        }
    }
    let mut out = String::from("<table class=\"settings\">\n");
    rows(
        "",
        &serde_json::to_value(config).unwrap_or_default(),
        &mut out,
    );
    out + "</table>\n"
}

/// The SVG `svg` as an image of the page, under the description `alt`.
fn image(alt: &str, svg: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(svg);
    format!(
        "<figure><img alt=\"{}\" src=\"data:image/svg+xml;base64,{data}\"/></figure>\n",
        escape(alt)
    )
}

/// `text` with the characters HTML gives meaning to written as entities, and control
/// characters, which XML cannot hold, as escapes (`\u{1b}`).
fn escape(text: &str) -> String {
    crate::progress::printable(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
