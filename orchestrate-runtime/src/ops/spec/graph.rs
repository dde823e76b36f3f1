//! The dependency graph as inline SVG: the layout constants, each node's three labels (cut to fit
//! their box), and [`svg`], which places the nodes in columns by dependency depth and draws an
//! arrow from each node to the nodes that use it.

use super::{esc, nodes};
use crate::spec::EndpointSpec;
use orchestrate_core::sequence::{self, Kind, Node, Target};
use std::fmt::Write as _;

const NODE_HEIGHT: f64 = 58.0;
/// Vertical room of one lane for an edge that skips a column.
const LANE_GAP: f64 = 16.0;
const COLUMN_GAP: f64 = 56.0;
const ROW_GAP: f64 = 22.0;
const PAD: f64 = 10.0;
/// Advance of one character of the 13px bold monospace field name and the 11px monospace lines.
const NAME_CHAR: f64 = 7.9;
const DETAIL_CHAR: f64 = 6.7;
const MAX_WIDTH: f64 = 380.0;

/// The three lines of a node's box: field, service (or "computed"), request (or value).
fn labels(node: &Node<'_>) -> [String; 3] {
    match &node.kind {
        Kind::Call(call) => [
            node.name.to_owned(),
            if call.required { call.service.to_owned() } else { format!("{} · optional", call.service) },
            match call.target {
                Target::Http { method, path } => format!("{method} {path}"),
                Target::With(expr) => format!("with {expr}"),
            },
        ],
        Kind::Compute(expr) => [node.name.to_owned(), "computed".to_owned(), format!("= {expr}")],
    }
}

/// `text` cut to `chars` characters, with an ellipsis when cut.
fn fit(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_owned()
    } else {
        text.chars().take(chars.saturating_sub(1)).chain(['…']).collect()
    }
}

/// The endpoint's dependency graph as an inline SVG element: one column per dependency depth,
/// each node in a box labelled with its field, its service and its request (or its computed
/// value), placed level with the nodes it uses where there is room; an arrow from each node to
/// every node that uses it. Required calls are solid blue, optional ones dashed amber, computed
/// fields rounded grey. `index` makes the element's ids unique within a page.
///
/// ```
/// # use orchestrate_runtime::{EndpointSpec, Method, NodeKind, NodeSpec};
/// # use std::time::Duration;
/// static SUM: EndpointSpec = EndpointSpec::new(
///     "Sum", Method::Get, "/sum", Duration::from_millis(10), &[],
///     &[
///         NodeSpec::new("a", "u8", &[], &[], NodeKind::Compute { expr: "1" }),
///         NodeSpec::new("b", "u8", &[0], &[], NodeKind::Compute { expr: "a + 1" }),
///     ],
/// );
/// let svg = orchestrate_runtime::ops::spec::svg(&SUM, 0);
/// assert!(svg.starts_with("<svg") && svg.contains(">a</text>") && svg.contains(">= a + 1</text>"));
/// assert_eq!(svg.matches("<path class=\"edge\"").count(), 1);
/// ```
pub fn svg(spec: &EndpointSpec, index: usize) -> String {
    let nodes = nodes(spec, None);
    let labels: Vec<[String; 3]> = nodes.iter().map(labels).collect();
    let layers = sequence::layers(&nodes);
    let columns = layers.iter().copied().max().map_or(0, |m| m + 1);
    let members: Vec<Vec<usize>> =
        (0..columns).map(|c| (0..nodes.len()).filter(|&i| layers[i] == c).collect()).collect();

    // Each column as wide as its widest label.
    let width: Vec<f64> = members
        .iter()
        .map(|column| {
            let widest = column
                .iter()
                .map(|&i| {
                    let [name, service, request] = &labels[i];
                    (name.chars().count() as f64 * NAME_CHAR)
                        .max(service.chars().count().max(request.chars().count()) as f64 * DETAIL_CHAR)
                })
                .fold(0.0, f64::max);
            (widest + 24.0).clamp(120.0, MAX_WIDTH)
        })
        .collect();
    let left: Vec<f64> = width.iter().scan(PAD, |x, w| Some(std::mem::replace(x, *x + w + COLUMN_GAP))).collect();
    let stack = |count: usize| count as f64 * NODE_HEIGHT + count.saturating_sub(1) as f64 * ROW_GAP;
    let height = stack(members.iter().map(Vec::len).max().unwrap_or(0));

    // The first column is centred; later ones sit level with the nodes they use, without overlap.
    let mut top: Vec<f64> = vec![PAD; nodes.len()];
    for column in &members {
        let wanted = |i: usize| {
            let deps: Vec<f64> = nodes[i].deps.iter().filter(|&&d| d < nodes.len()).map(|&d| top[d]).collect();
            (!deps.is_empty()).then(|| deps.iter().sum::<f64>() / deps.len() as f64)
        };
        let mut order: Vec<(usize, Option<f64>)> = column.iter().map(|&i| (i, wanted(i))).collect();
        order.sort_by(|a, b| a.1.unwrap_or(0.0).total_cmp(&b.1.unwrap_or(0.0)).then(a.0.cmp(&b.0)));
        let centred = PAD + (height - stack(order.len())) / 2.0;
        let mut next = PAD;
        for (k, &(i, want)) in order.iter().enumerate() {
            let y = want.unwrap_or(centred + k as f64 * (NODE_HEIGHT + ROW_GAP)).max(next);
            top[i] = y;
            next = y + NODE_HEIGHT + ROW_GAP;
        }
        // Pushed past the bottom: shift the column up as far as needed.
        let overflow = (next - ROW_GAP) - (PAD + height);
        if overflow > 0.0 {
            for &(i, _) in &order {
                top[i] -= overflow;
            }
        }
    }
    let total_width = left.last().zip(width.last()).map_or(2.0 * PAD, |(x, w)| x + w + PAD);
    // An edge that skips a column runs in its own lane below every node, so it never passes
    // behind the nodes in between.
    let skips = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.deps.iter().filter(|&&d| d < nodes.len()).map(move |&d| (d, i)))
        .filter(|&(d, i)| layers[i] > layers[d] + 1)
        .count();
    let total_height = height + 2.0 * PAD + skips as f64 * LANE_GAP;

    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"graph\" data-endpoint=\"{name}\" width=\"{total_width:.0}\" \
         height=\"{total_height:.0}\" viewBox=\"0 0 {total_width:.0} {total_height:.0}\" role=\"img\" \
         aria-label=\"Dependency graph of {name}\"><defs><marker id=\"arrow-{index}\" viewBox=\"0 0 10 10\" refX=\"10\" \
         refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" \
         fill=\"#5b6475\"/></marker></defs>",
        name = esc(spec.name),
    );
    let mut lane = 0;
    for (i, node) in nodes.iter().enumerate() {
        for &d in node.deps.iter().filter(|&&d| d < nodes.len()) {
            let (x1, y1) = (left[layers[d]] + width[layers[d]], top[d] + NODE_HEIGHT / 2.0);
            let (x2, y2) = (left[layers[i]] - 1.0, top[i] + NODE_HEIGHT / 2.0);
            let path = if layers[i] > layers[d] + 1 {
                lane += 1;
                let y = PAD + height + lane as f64 * LANE_GAP - LANE_GAP / 2.0;
                let (out_x, in_x) = (x1 + COLUMN_GAP / 2.0, x2 - COLUMN_GAP / 2.0);
                format!(
                    "M{x1:.1},{y1:.1} C{out_x:.1},{y1:.1} {x1:.1},{y:.1} {out_x:.1},{y:.1} L{in_x:.1},{y:.1} \
                     C{x2:.1},{y:.1} {in_x:.1},{y2:.1} {x2:.1},{y2:.1}"
                )
            } else {
                let bend = (x2 - x1) / 2.0;
                format!("M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}", x1 + bend, x2 - bend)
            };
            let _ = write!(
                out,
                "<path class=\"edge\" d=\"{path}\" fill=\"none\" stroke=\"#5b6475\" stroke-width=\"1.4\" \
                 marker-end=\"url(#arrow-{index})\"/>",
            );
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let (x, y, w) = (left[layers[i]], top[i], width[layers[i]]);
        let (fill, stroke, dash, radius) = match &node.kind {
            Kind::Call(call) if call.required => ("#eef4ff", "#3b6fd8", "", 6),
            Kind::Call(_) => ("#fff8e6", "#c98a00", " stroke-dasharray=\"5 4\"", 6),
            Kind::Compute(_) => ("#f1f2f4", "#8a8f99", "", 16),
        };
        let [name, service, request] = &labels[i];
        let chars = ((w - 24.0) / DETAIL_CHAR) as usize;
        let font = "font-family=\"ui-monospace,Menlo,Consolas,monospace\"";
        let _ = write!(
            out,
            "<g class=\"node\"><title>{title}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.0}\" \
             height=\"{NODE_HEIGHT:.0}\" rx=\"{radius}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"{dash}/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" {font} font-size=\"13\" font-weight=\"700\" fill=\"#1d2330\">{}</text>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" {font} font-size=\"11\" fill=\"#4a5365\">{}</text>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" {font} font-size=\"11\" fill=\"#1d2330\">{}</text></g>",
            y + 18.0,
            esc(name),
            y + 34.0,
            esc(&fit(service, chars)),
            y + 49.0,
            esc(&fit(request, chars)),
            title = esc(&format!("{name} ({service}): {request}")),
            tx = x + 12.0,
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::spec::tests::HOSTILE;

    #[test]
    fn a_dependency_on_no_node_draws_nothing_and_panics_nowhere() {
        let svg = svg(&HOSTILE, 3);
        assert_eq!(svg.matches("<path class=\"edge\"").count(), 1, "{svg}");
        assert!(svg.contains("marker-end=\"url(#arrow-3)\""));
    }
}
