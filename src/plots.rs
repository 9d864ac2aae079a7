//! The pictures, as SVG files that open in any browser: training curves, a grid of
//! predictions, the confusion matrix as a heat map, the CNN's first-layer filters with
//! their feature maps, several runs compared, and a sweep. Each is drawn in memory and
//! returned as its SVG text, which the caller writes to a file or into a page. They take
//! plain numbers and names: nothing here knows about training, files, run folders or the
//! dataset.

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::BitMapElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws with `draw` on a `width`×`height` SVG; returns its text.
fn svg((width, height): (u32, u32), draw: impl FnOnce(&Area) -> Result<()>) -> Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    Ok(text)
}

fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

/// The span of the finite `values` with a tenth of it added above and below (at least
/// 0.001), the top no higher than `cap` (1.0 for accuracies); 0 to 1 when none is finite.
/// NaN and infinite values are left off the charts ([`finite`]).
fn padded_range(values: impl Iterator<Item = f64>, cap: f64) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.1).max(1e-3);
    let range = (lo - pad)..(hi + pad).min(cap);
    match range.start.is_finite() && range.end.is_finite() && range.start < range.end {
        true => range,
        false => 0.0..1.0,
    }
}

/// The points of `points` that can be drawn: both coordinates finite.
fn finite(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// A line on a chart: its name in the legend and its points, `(epoch, value)` on the
/// epoch charts.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Colours of the lines of one chart, in order (train, test, validation on the curves).
const COLOURS: [RGBColor; 3] = [BLUE, RED, GREEN];

/// `curves.svg`: the `loss` and `accuracy` lines per epoch, side by side.
pub fn curves(loss: &[Line], accuracy: &[Line]) -> Result<String> {
    svg((960, 400), |root| {
        let panels = root.split_evenly((1, 2));
        // the legend goes where the curves are not: loss falls, accuracy rises
        let charts = [
            ("loss", loss, SeriesLabelPosition::UpperRight),
            ("accuracy", accuracy, SeriesLabelPosition::LowerRight),
        ];
        for (panel, (name, lines, legend_at)) in panels.iter().zip(charts) {
            let mut chart = epoch_chart(panel, name, lines, f64::MAX, (20, 56))?;
            for (line, colour) in lines.iter().zip(COLOURS) {
                series(&mut chart, line, colour.to_rgba())?;
            }
            legend(&mut chart, legend_at)?;
        }
        Ok(())
    })
}

/// A chart of `lines` against the epoch, titled `title`, its value axis padded and
/// capped at `cap`; `sizes`: the title's font size and the value labels' width.
fn epoch_chart<'a, 'b: 'a>(
    area: &'a Area<'b>,
    title: &str,
    lines: &[Line],
    cap: f64,
    (font, label_width): (u32, u32),
) -> Result<Chart<'a, 'b>> {
    let points = || lines.iter().flat_map(|l| l.points.iter());
    let last = points()
        .map(|p| p.0)
        .filter(|x| x.is_finite())
        .fold(1.0, f64::max);
    let y = padded_range(points().map(|p| p.1), cap);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", font))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0.5..last + 0.5, y)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels((last as usize).min(20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(plot_error)?;
    Ok(chart)
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One labelled line on a chart, with a dot at each point.
fn series(chart: &mut Chart, line: &Line, color: RGBAColor) -> Result<()> {
    let points = finite(&line.points);
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
        .map_err(plot_error)?
        .label(&line.label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    chart
        .draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )
        .map_err(plot_error)?;
    Ok(())
}

/// The series' legend in a framed, half-transparent box at `position`.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}

/// `compare.svg`: test accuracy per epoch of several runs (a line each) on one chart.
pub fn compare(runs: &[Line]) -> Result<String> {
    svg((900, 500), |root| {
        let mut chart = epoch_chart(root, "test accuracy per epoch", runs, 1.0, (22, 60))?;
        for (i, line) in runs.iter().enumerate() {
            series(&mut chart, line, Palette99::pick(i).to_rgba())?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// One epoch count of a sweep: its accuracies at each size, in the order of the sizes
/// (the means over its seeds), and the lowest and highest test accuracy of the seeds.
pub struct SweepLine {
    pub label: String,
    pub test: Vec<f64>,
    pub test_range: Vec<(f64, f64)>,
    pub train: Vec<f64>,
}

/// `sweep.svg`: accuracy against size, a colour per epoch count: test accuracy solid,
/// train accuracy dashed, so the overfitting gap between them shows.
pub fn sweep(sizes: &[String], lines: &[SweepLine]) -> Result<String> {
    svg((900, 520), |root| {
        let ranges = lines.iter().flat_map(|l| &l.test_range);
        let accs = lines.iter().flat_map(|l| l.test.iter().chain(&l.train));
        let y = padded_range(accs.copied().chain(ranges.flat_map(|r| [r.0, r.1])), 1.0);
        let mut chart = ChartBuilder::on(root)
            .caption(
                match lines.iter().flat_map(|l| &l.test_range).any(|r| r.1 > r.0) {
                    true => {
                        "accuracy against size (test solid, train dashed; bars: the seeds' range)"
                    }
                    false => "accuracy against size (test solid, train dashed)",
                },
                ("sans-serif", 20),
            )
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..sizes.len() as f64 - 0.5, y)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("size")
            .y_desc("accuracy")
            .x_labels(sizes.len())
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    sizes.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(plot_error)?;
        for (i, line) in lines.iter().enumerate() {
            sweep_line(&mut chart, line, Palette99::pick(i).to_rgba())?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// One epoch count on the sweep chart: test accuracy solid with the seeds' range as bars,
/// train accuracy dashed; a point per size.
fn sweep_line(chart: &mut Chart, line: &SweepLine, color: RGBAColor) -> Result<()> {
    let at = |values: &[f64]| -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(x, &v)| (x as f64, v))
            .collect()
    };
    let test = Line {
        label: line.label.clone(),
        points: at(&line.test),
    };
    series(chart, &test, color)?;
    let bars = (line.test_range.iter().enumerate())
        .filter(|(_, (lo, hi))| hi > lo && lo.is_finite() && hi.is_finite())
        .map(|(x, &(lo, hi))| {
            PathElement::new([(x as f64, lo), (x as f64, hi)], color.stroke_width(1))
        });
    chart.draw_series(bars).map_err(plot_error)?;
    let train = finite(&at(&line.train));
    chart
        .draw_series(DashedLineSeries::new(train, 6, 4, color.stroke_width(1)))
        .map_err(plot_error)?;
    Ok(())
}

/// A square image to draw: `channels` planes (1 grey, 3 red, green and blue) of side ×
/// side values in [0, 1], one plane after the other, each row by row. Grey is drawn dark
/// on light, as the lesson draws Fashion-MNIST's light garments; colour as it is.
pub struct Image {
    pub values: Vec<f32>,
    pub channels: usize,
}

impl Image {
    fn side(&self) -> usize {
        ((self.values.len() / self.channels.max(1)) as f64)
            .sqrt()
            .round() as usize
    }

    /// A bitmap of the image at `pos`, each pixel `scale`×`scale`.
    fn bitmap(&self, pos: (i32, i32), scale: u32) -> BitMapElement<'static, (i32, i32)> {
        let (side, channels) = (self.side(), self.channels);
        let plane = side * side;
        bitmap(pos, side, scale, |at| match channels {
            3 => [0, 1, 2].map(|c| (self.values[c * plane + at].clamp(0.0, 1.0) * 255.0) as u8),
            _ => grey(1.0 - self.values[at]),
        })
    }
}

/// One labelled image of [`predictions`].
pub struct Prediction {
    pub image: Image,
    pub predicted: String,
    pub truth: String,
}

/// `predictions.svg`: test images in a grid, each with its predicted and true label;
/// mistakes in red, as in the lesson's plots.
pub fn predictions(items: &[Prediction]) -> Result<String> {
    // an image of 112 pixels or so on a side (Fashion-MNIST's 28 four times over)
    let side = items.first().map_or(28, |p| p.image.side()).max(1) as u32;
    let scale = (112 / side).max(1);
    let cell = ((side * scale + 20).max(170), side * scale + 48);
    let cols = 5u32;
    let rows = (items.len() as u32).div_ceil(cols).max(1);
    svg((cols * cell.0, rows * cell.1), |root| {
        for (i, item) in items.iter().enumerate() {
            let (x, y) = ((i as u32 % cols) * cell.0, (i as u32 / cols) * cell.1);
            let left = x as i32 + (cell.0 as i32 - (side * scale) as i32) / 2;
            root.draw(&item.image.bitmap((left, y as i32 + 6), scale))
                .map_err(plot_error)?;
            let right = item.predicted == item.truth;
            let color = if right { BLUE } else { RED };
            let text = if right {
                item.predicted.clone()
            } else {
                format!("{} (is {})", item.predicted, item.truth)
            };
            let style = TextStyle::from(("sans-serif", 13).into_font())
                .color(&color)
                .pos(Pos::new(HPos::Center, VPos::Top));
            let below = y as i32 + (side * scale) as i32 + 12;
            root.draw_text(&text, &style, (x as i32 + cell.0 as i32 / 2, below))
                .map_err(plot_error)?;
        }
        Ok(())
    })
}

/// `confusion.svg`: the confusion matrix as a heat map, counts written in each cell;
/// `names`: the classes, in the order of the rows and columns.
pub fn confusion(matrix: &[Vec<u64>], names: &[String]) -> Result<String> {
    // ten classes in cells of 56 pixels, as Fashion-MNIST's; more in smaller ones
    let cell = (560 / matrix.len().max(1) as i32).clamp(14, 56);
    let (left, top) = (110i32, 56i32);
    let span = cell as u32 * matrix.len() as u32;
    let size = (
        (left as u32 + span + 50).max(720),
        (top as u32 + span + 64).max(680),
    );
    svg(size, |root| {
        let root = root
            .titled(
                "confusion matrix (rows: true class, columns: predicted)",
                ("sans-serif", 18),
            )
            .map_err(plot_error)?;
        let max = matrix.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
        for (t, row) in matrix.iter().enumerate() {
            let y = top + t as i32 * cell;
            root.draw_text(
                names.get(t).map_or("", String::as_str),
                &TextStyle::from(("sans-serif", 13).into_font())
                    .pos(Pos::new(HPos::Right, VPos::Center)),
                (left - 6, y + cell / 2),
            )
            .map_err(plot_error)?;
            for (p, &count) in row.iter().enumerate() {
                let at = (left + p as i32 * cell, y);
                count_cell(&root, at, cell, count, max)?;
            }
        }
        // column headings whole, a word to a line: "Ankle boot" would not fit on one
        for (p, name) in names.iter().enumerate() {
            let words: Vec<&str> = name.split([' ', '/']).collect();
            for (i, word) in words.iter().enumerate() {
                let up = (words.len() - 1 - i) as i32 * 14;
                root.draw_text(
                    word,
                    &TextStyle::from(("sans-serif", 12).into_font())
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                    (left + p as i32 * cell + cell / 2, top - 6 - up),
                )
                .map_err(plot_error)?;
            }
        }
        Ok(())
    })
}

/// One cell of the confusion matrix at `(x, y)`, `cell` pixels on a side: `count`
/// written on a shade of blue, as dark as `count` is of `max`.
fn count_cell(root: &Area, (x, y): (i32, i32), cell: i32, count: u64, max: f64) -> Result<()> {
    // square root so the small off-diagonal counts still show
    let shade = (count as f64 / max).sqrt();
    let fill = RGBColor(
        (255.0 * (1.0 - shade)) as u8,
        (255.0 * (1.0 - 0.6 * shade)) as u8,
        255,
    );
    let square = [(x, y), (x + cell, y + cell)];
    root.draw(&Rectangle::new(square, fill.filled()))
        .map_err(plot_error)?;
    root.draw(&Rectangle::new(square, WHITE))
        .map_err(plot_error)?;
    let ink = if shade > 0.6 { WHITE } else { BLACK };
    root.draw_text(
        &count.to_string(),
        &TextStyle::from(("sans-serif", 13).into_font())
            .color(&ink)
            .pos(Pos::new(HPos::Center, VPos::Center)),
        (x + cell / 2, y + cell / 2),
    )
    .map_err(plot_error)
}

/// What `filters.svg` shows: the first layer's kernels and, for one input image, what
/// each kernel makes of it before and after max pooling.
pub struct FilterView {
    pub input: Image,
    /// Its class.
    pub input_label: String,
    /// Each kernel's 3×3 weights, a plane per channel of the input.
    pub kernels: Vec<Vec<f32>>,
    /// Each kernel's feature map after ReLU, the input's side.
    pub maps: Vec<Vec<f32>>,
    /// The same after 2×2 max pooling, half the side.
    pub pooled: Vec<Vec<f32>>,
}

/// `filters.svg`: the first convolution's filters, their feature maps for one test image,
/// and the maps after max pooling: what the lesson explains about convolution and
/// pooling in words.
pub fn filters(view: &FilterView) -> Result<String> {
    let n = view.kernels.len() as i32;
    let cols = 16i32;
    let rows = (n + cols - 1) / cols;
    let cell = 60i32;
    let section = rows * cell + 40;
    let width = (cols * cell + 40) as u32;
    let height = (150 + 3 * section) as u32;
    svg((width, height), |root| {
        let heading = |text: &str, y: i32| {
            root.draw_text(text, &("sans-serif", 16).into_font().into(), (20, y))
                .map_err(plot_error)
        };
        heading(&format!("input: a test image ({})", view.input_label), 10)?;
        let side = view.input.side();
        // about 112 pixels on a side, and 56 for a map and 56 for a pooled map
        let scale = |side: usize, of: usize| (of / side.max(1)).max(1) as u32;
        root.draw(&view.input.bitmap((20, 34), scale(side, 112)))
            .map_err(plot_error)?;
        let kernels = match view.input.channels {
            1 => "the first layer's 3×3 filters (red positive, blue negative weights)",
            _ => "the first layer's 3×3 filters (each weight of red, green and blue as its colour)",
        };
        let maps =
            format!("their feature maps for the input, after ReLU ({side}×{side}; dark is strong)");
        let pooled = format!(
            "the same after 2×2 max pooling ({0}×{0}): half the size, the strongest \
             responses kept",
            side / 2
        );
        let sections: [(&str, &Vec<Vec<f32>>, usize, u32); 3] = [
            (kernels, &view.kernels, 3, 16),
            (&maps, &view.maps, side, scale(side, 56)),
            (&pooled, &view.pooled, side / 2, scale(side / 2, 56)),
        ];
        for (s, (title, images, side, scale)) in sections.into_iter().enumerate() {
            let top = 150 + s as i32 * section;
            heading(title, top)?;
            for (i, values) in images.iter().enumerate() {
                let (x, y) = (
                    20 + (i as i32 % cols) * cell,
                    top + 26 + (i as i32 / cols) * cell,
                );
                let element = if s == 0 {
                    kernel((x, y), values, view.input.channels, scale)
                } else {
                    let m = values.iter().fold(1e-6f32, |m, &v| m.max(v));
                    bitmap((x, y), side, scale, move |at| grey(1.0 - values[at] / m))
                };
                root.draw(&element).map_err(plot_error)?;
            }
        }
        Ok(())
    })
}

/// A 3×3 kernel of `channels` planes: one plane in red and blue for its signs, three
/// as a colour each weight lightens or darkens from grey.
fn kernel(
    pos: (i32, i32),
    values: &[f32],
    channels: usize,
    scale: u32,
) -> BitMapElement<'static, (i32, i32)> {
    let m = values.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let values = values.to_vec();
    bitmap(pos, 3, scale, move |at| match channels {
        3 => [0, 1, 2].map(|c| ((0.5 + values[c * 9 + at] / m / 2.0) * 255.0) as u8),
        _ => diverging(values[at] / m),
    })
}

/// A `side`×`side` bitmap at `pos`, each pixel a `scale`×`scale` block of the colour
/// `color` gives for its index (row by row).
fn bitmap(
    pos: (i32, i32),
    side: usize,
    scale: u32,
    color: impl Fn(usize) -> [u8; 3],
) -> BitMapElement<'static, (i32, i32)> {
    let size = side * scale as usize;
    let mut rgb = Vec::with_capacity(size * size * 3);
    for y in 0..size {
        for x in 0..size {
            rgb.extend_from_slice(&color((y / scale as usize) * side + x / scale as usize));
        }
    }
    let size = size as u32;
    BitMapElement::with_owned_buffer(pos, (size, size), rgb)
        .expect("the buffer is built for this size")
}

fn grey(v: f32) -> [u8; 3] {
    let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
    [g, g, g]
}

/// Blue for -1, white for 0, red for +1.
fn diverging(v: f32) -> [u8; 3] {
    let v = v.clamp(-1.0, 1.0);
    let fade = (255.0 * (1.0 - v.abs())) as u8;
    if v >= 0.0 {
        [255, fade, fade]
    } else {
        [fade, fade, 255]
    }
}
