//! The evaluation as a table (standard output), JSON (for machines) and a
//! self-contained HTML report with plots drawn by `plotters` as inline SVG (no external
//! assets: it opens offline and can be attached to an e-mail).

use std::fmt::Write as _;

use plotters::prelude::*;
use serde_json::{Map, Value, json};
use vigil_score::RuleId;
use vigil_score::alert::PolicyConfig;

use crate::Evaluation;
use crate::metrics::{Estimate, Figures, POLICY, max_score};

/// Each rule's published threshold, as the per-rule rows use it.
pub fn rule_threshold(rule: RuleId) -> String {
    match rule {
        RuleId::Qsofa => "score >= 2".into(),
        RuleId::Sirs => "score >= 2".into(),
        RuleId::News2 => "single 3 or total >= 5".into(),
        RuleId::Sofa => "rise >= 2".into(),
        RuleId::SepticShock => "present".into(),
        RuleId::Mews => "score >= 5".into(),
        RuleId::Risk => format!(
            "estimate >= {} %",
            vigil_score::risk::RiskModel::shipped().threshold_percent
        ),
    }
}

/// The configured policy in one line: which rules alert at which level, and persistence.
pub fn describe(policy: &PolicyConfig) -> String {
    let t = &policy.thresholds;
    let mut parts = Vec::new();
    let news2: Vec<String> = t
        .news2
        .iter()
        .zip(["advisory", "urgent", "emergency"])
        .filter_map(|(r, l)| r.map(|r| format!("{} {l}", risk_text(r))))
        .collect();
    if !news2.is_empty() {
        parts.push(format!("NEWS2 {}", news2.join(", ")));
    }
    for (rule, level, what) in [
        (RuleId::Qsofa, t.qsofa, ">= 2"),
        (RuleId::Sirs, t.sirs, ">= 2"),
        (RuleId::Sofa, t.sofa, "rise >= 2"),
        (RuleId::SepticShock, t.septic_shock, "present"),
    ] {
        if let Some(l) = level {
            parts.push(format!("{} {what} {}", rule.label(), l.name()));
        }
    }
    let mews: Vec<String> = t
        .mews
        .iter()
        .zip(["advisory", "urgent", "emergency"])
        .filter_map(|(m, l)| m.map(|m| format!(">= {m} {l}")))
        .collect();
    if !mews.is_empty() {
        parts.push(format!("MEWS {}", mews.join(", ")));
    }
    let risk: Vec<String> = t
        .risk
        .iter()
        .zip(["advisory", "urgent", "emergency"])
        .filter_map(|(m, l)| m.map(|m| format!(">= {m} % {l}")))
        .collect();
    if !risk.is_empty() {
        parts.push(format!("Vigil Risk {}", risk.join(", ")));
    }
    if parts.is_empty() {
        parts.push("no rule alerts".into());
    }
    let p = &policy.persistence;
    let held = match (p.readings, p.duration) {
        (0 | 1, None) => "a level acts at once".to_string(),
        (r, None) => format!("a level acts once held for {r} assessments"),
        (0, Some(d)) => format!("a level acts once held for {} min", d.as_millis() / 60_000),
        (r, Some(d)) => format!(
            "a level acts once held for {r} assessments or {} min",
            d.as_millis() / 60_000
        ),
    };
    format!("{}; {held}", parts.join("; "))
}

fn risk_text(r: vigil_score::rules::news2::Risk) -> &'static str {
    use vigil_score::rules::news2::Risk;
    match r {
        Risk::Low => "any",
        Risk::LowMedium => "single 3",
        Risk::Medium => ">= 5",
        Risk::High => ">= 7",
    }
}

fn label(k: usize) -> String {
    if k == POLICY {
        "policy".into()
    } else {
        let r = RuleId::ALL[k];
        format!("{} {}", r.label(), rule_threshold(r))
    }
}

fn cell(e: Option<Estimate>, digits: usize, percent: bool) -> String {
    let Some(e) = e else { return "-".into() };
    let f = |v: f64| {
        if percent {
            format!("{:.*}", digits, v * 100.0)
        } else {
            format!("{v:.digits$}")
        }
    };
    match (e.low, e.high) {
        (Some(lo), Some(hi)) => format!("{} ({}-{})", f(e.value), f(lo), f(hi)),
        _ => f(e.value),
    }
}

/// A predictor's lead time as "median (q1-q3)" hours, or "-" without detected stays.
fn lead_text(f: &Figures) -> String {
    match (f.lead_time_median, f.lead_time_q1, f.lead_time_q3) {
        (Some(m), Some(a), Some(b)) => format!("{:.0} ({:.0}-{:.0})", m.value, a.value, b.value),
        _ => "-".into(),
    }
}

/// The table for standard output.
pub fn table(e: &Evaluation) -> String {
    let mut out = String::new();
    let c = &e.cohort;
    let _ = writeln!(
        out,
        "{} stays ({} septic), {} hours ({:.0} patient-days), evaluated in {:.1} s",
        c.stays, c.septic, c.hours, c.patient_days, e.seconds
    );
    let n = &e.counts;
    let _ = writeln!(
        out,
        "input: {} readings scored, {} cells missing, {} values rejected, {} cells of unscored columns ignored, {} stays rejected",
        n.accepted,
        n.missing,
        n.rejected_total(),
        n.ignored_total(),
        n.rejected_stays.len()
    );
    for (reason, count) in &n.rejected {
        let _ = writeln!(out, "  rejected {count:>7}  {reason}");
    }
    let _ = writeln!(out, "policy: {}", describe(&e.policy));
    let _ = writeln!(
        out,
        "figures with 95 % bootstrap intervals; percentages for sensitivity, non-septic alerted, PPV\n"
    );
    let _ = writeln!(
        out,
        "{:<30} {:>22} {:>22} {:>22} {:>20} {:>20} {:>22} {:>20} {:>14}",
        "predictor",
        "utility",
        "AUROC",
        "AUPRC",
        "sensitivity %",
        "non-septic alerted %",
        "episodes/100 pt-days",
        "episode PPV %",
        "lead h (IQR)"
    );
    for (k, f) in e.figures.iter().enumerate() {
        let lead = lead_text(f);
        let _ = writeln!(
            out,
            "{:<30} {:>22} {:>22} {:>22} {:>20} {:>20} {:>22} {:>20} {:>14}",
            label(k),
            cell(f.utility, 3, false),
            cell(f.auroc, 3, false),
            cell(f.auprc, 3, false),
            cell(f.sensitivity, 1, true),
            cell(f.non_septic_alerted, 1, true),
            cell(f.episodes_per_100_patient_days, 0, false),
            cell(f.episode_ppv, 1, true),
            lead
        );
    }
    let _ = writeln!(out, "\ncoverage (share of hours with a current reading):");
    let coverage: Vec<String> = e
        .curves
        .coverage()
        .into_iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(p, s)| format!("{} {:.0} %", p.code(), s * 100.0))
        .collect();
    let _ = writeln!(out, "  {}", coverage.join(", "));
    out
}

fn figures_json(f: &Figures) -> Value {
    let mut m = Map::new();
    let mut put = |name: &str, e: Option<Estimate>| {
        m.insert(name.into(), json!(e.map(|e| e.value)));
        if let Some(e) = e
            && let (Some(lo), Some(hi)) = (e.low, e.high)
        {
            m.insert(format!("{name}_ci"), json!([lo, hi]));
        }
    };
    put("utility", f.utility);
    put("auroc", f.auroc);
    put("auprc", f.auprc);
    put("sensitivity", f.sensitivity);
    put("non_septic_alerted", f.non_septic_alerted);
    put(
        "episodes_per_100_patient_days",
        f.episodes_per_100_patient_days,
    );
    put("episode_ppv", f.episode_ppv);
    put("alerted_hours", f.alerted_hours);
    put("lead_time_median_hours", f.lead_time_median);
    put("lead_time_q1_hours", f.lead_time_q1);
    put("lead_time_q3_hours", f.lead_time_q3);
    m.insert("septic_stays_detected".into(), json!(f.detected));
    m.insert("episodes".into(), json!(f.episodes));
    Value::Object(m)
}

/// The evaluation as JSON: `cohort`, `input`, `policy` (the configured policy's figures,
/// `utility` among them), `rules` (each rule alone), `thresholds` (each rule's curve),
/// `coverage` and `lead_time_histogram`. Each figure is a number; `<figure>_ci` holds its
/// 95 % bootstrap interval.
pub fn json(e: &Evaluation, bootstrap: usize, seed: u64) -> Value {
    let mut policy = figures_json(&e.figures[POLICY]);
    if let Value::Object(m) = &mut policy {
        m.insert("description".into(), json!(describe(&e.policy)));
    }
    let mut rules = Map::new();
    let mut thresholds = Map::new();
    for (k, &rule) in RuleId::ALL.iter().enumerate() {
        let mut f = figures_json(&e.figures[k]);
        if let Value::Object(m) = &mut f {
            m.insert("threshold".into(), json!(rule_threshold(rule)));
        }
        rules.insert(rule.name().into(), f);
        thresholds.insert(
            rule.name().into(),
            json!(e.curves.thresholds(rule, max_score(rule))),
        );
    }
    let n = &e.counts;
    json!({
        "cohort": e.cohort,
        "input": {
            "readings_scored": n.accepted,
            "cells_missing": n.missing,
            "values_rejected": n.rejected,
            "cells_ignored": n.ignored(),
            "stays_rejected": n.rejected_stays.len(),
        },
        "policy": policy,
        "rules": rules,
        "thresholds": thresholds,
        "coverage": e.curves.coverage().into_iter().map(|(p, s)| (p.code().to_string(), json!(s))).collect::<Map<_, _>>(),
        "lead_time_histogram": e.curves.lead_histogram(POLICY).into_iter().map(|(h, c)| json!({"hours": h, "stays": c})).collect::<Vec<_>>(),
        "bootstrap": {"replicates": bootstrap, "seed": seed},
        "seconds": e.seconds,
    })
}

const COLOURS: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(0, 0, 0),
];

type Drawn = Result<String, String>;

fn roc_svg(e: &Evaluation) -> Drawn {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| x.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("ROC of each score, hour by hour", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(|x| x.to_string())?;
        chart
            .configure_mesh()
            .x_desc("1 - specificity")
            .y_desc("sensitivity")
            .draw()
            .map_err(|x| x.to_string())?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
            .map_err(|x| x.to_string())?;
        for (k, &rule) in RuleId::ALL.iter().enumerate() {
            let colour = COLOURS[k];
            let auc = e.figures[k].auroc.map_or(f64::NAN, |a| a.value);
            chart
                .draw_series(LineSeries::new(e.curves.roc(rule), colour.stroke_width(2)))
                .map_err(|x| x.to_string())?
                .label(format!("{} (AUROC {auc:.3})", rule.label()))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|x| x.to_string())?;
        root.present().map_err(|x| x.to_string())?;
    }
    Ok(svg)
}

fn lead_svg(e: &Evaluation) -> Drawn {
    let hist = e.curves.lead_histogram(POLICY);
    let top = hist.iter().map(|&(_, c)| c).max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| x.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Policy: lead time before onset (detected septic stays)",
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-3.5f64..12.5f64, 0f64..top)
            .map_err(|x| x.to_string())?;
        chart
            .configure_mesh()
            .x_desc("hours before t_sepsis (negative: after; 12: active when the window opened)")
            .y_desc("septic stays")
            .draw()
            .map_err(|x| x.to_string())?;
        chart
            .draw_series(hist.iter().map(|&(h, c)| {
                let x = h as f64;
                Rectangle::new([(x - 0.4, 0.0), (x + 0.4, c as f64)], COLOURS[0].filled())
            }))
            .map_err(|x| x.to_string())?;
        root.present().map_err(|x| x.to_string())?;
    }
    Ok(svg)
}

fn burden_svg(e: &Evaluation) -> Drawn {
    let curves: Vec<(RuleId, Vec<(f64, f64)>)> = RuleId::ALL
        .iter()
        .map(|&r| {
            let pts = e
                .curves
                .thresholds(r, max_score(r))
                .into_iter()
                .map(|p| (p.episodes_per_100_patient_days, p.sensitivity))
                .collect();
            (r, pts)
        })
        .collect();
    let policy = &e.figures[POLICY];
    let policy_point = policy
        .episodes_per_100_patient_days
        .zip(policy.sensitivity)
        .map(|(x, y)| (x.value, y.value));
    let xmax = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .chain(policy_point.map(|p| p.0))
        .fold(1.0f64, f64::max)
        * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| x.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Alert burden against sensitivity across thresholds",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..xmax, 0f64..1f64)
            .map_err(|x| x.to_string())?;
        chart
            .configure_mesh()
            .x_desc("alert episodes per 100 patient-days")
            .y_desc("septic stays alerted in their onset window")
            .draw()
            .map_err(|x| x.to_string())?;
        for (k, (rule, pts)) in curves.into_iter().enumerate() {
            let colour = COLOURS[k];
            chart
                .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
                .map_err(|x| x.to_string())?
                .label(format!("{} (each point a threshold)", rule.label()))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, colour.filled())))
                .map_err(|x| x.to_string())?;
        }
        if let Some(p) = policy_point {
            chart
                .draw_series(std::iter::once(TriangleMarker::new(p, 8, BLACK.filled())))
                .map_err(|x| x.to_string())?
                .label("configured policy")
                .legend(|(x, y)| TriangleMarker::new((x + 9, y), 6, BLACK.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|x| x.to_string())?;
        root.present().map_err(|x| x.to_string())?;
    }
    Ok(svg)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The self-contained HTML report.
///
/// # Errors
///
/// When a plot cannot be drawn (the reason from `plotters`).
pub fn html(e: &Evaluation, source: &str) -> Result<String, String> {
    let mut h = String::new();
    let c = &e.cohort;
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Vigil evaluation</title>\
         <style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:4px 6px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}figure{{display:inline-block;margin:8px}}\
         .note{{color:#555;font-size:13px}}</style></head><body>\
         <h1>Vigil evaluation</h1>\
         <p class=\"note\">Decision support only; not a medical device. Retrospective figures on the data named below; \
         a hospital must validate locally before use.</p>\
         <p>Data: {}. {} stays ({} septic), {} hours ({:.0} patient-days). Evaluated in {:.1} s.</p>\
         <p>Configured policy: {}.</p>",
        escape(source),
        c.stays,
        c.septic,
        c.hours,
        c.patient_days,
        e.seconds,
        escape(&describe(&e.policy))
    );
    h.push_str(
        "<h2>Figures</h2><p class=\"note\">95 % patient-level bootstrap intervals in brackets. \
         Rules alone at their published thresholds; the policy as configured. Sensitivity: septic stays \
         alerted from 12 h before to 3 h after onset. Lead time: hours before onset of the first alert in that window.</p>\
         <table><tr><th>predictor</th><th>utility</th><th>AUROC</th><th>AUPRC</th><th>sensitivity %</th>\
         <th>non-septic alerted %</th><th>episodes / 100 patient-days</th><th>episode PPV %</th>\
         <th>alerted hours %</th><th>lead time h, median (IQR)</th></tr>",
    );
    for (k, f) in e.figures.iter().enumerate() {
        let lead = lead_text(f);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&label(k)),
            cell(f.utility, 3, false),
            cell(f.auroc, 3, false),
            cell(f.auprc, 3, false),
            cell(f.sensitivity, 1, true),
            cell(f.non_septic_alerted, 1, true),
            cell(f.episodes_per_100_patient_days, 0, false),
            cell(f.episode_ppv, 1, true),
            cell(f.alerted_hours, 1, true),
            lead
        );
    }
    h.push_str("</table><h2>Plots</h2>");
    for svg in [roc_svg(e)?, burden_svg(e)?, lead_svg(e)?] {
        let _ = write!(h, "<figure>{svg}</figure>");
    }
    h.push_str("<h2>Each score across thresholds</h2><p class=\"note\">An hour positive when the score is at or above the threshold, without persistence or alert semantics.</p>");
    for &rule in &RuleId::ALL {
        let _ = write!(
            h,
            "<h3>{}</h3><table><tr><th>threshold</th><th>utility</th><th>sensitivity %</th><th>non-septic alerted %</th><th>episodes / 100 patient-days</th></tr>",
            rule.label()
        );
        for p in e.curves.thresholds(rule, max_score(rule)) {
            let _ = write!(
                h,
                "<tr><td>&ge; {}</td><td>{:.3}</td><td>{:.1}</td><td>{:.1}</td><td>{:.0}</td></tr>",
                p.threshold,
                p.utility,
                p.sensitivity * 100.0,
                p.non_septic_alerted * 100.0,
                p.episodes_per_100_patient_days
            );
        }
        h.push_str("</table>");
    }
    h.push_str(
        "<h2>Input</h2><table><tr><th>parameter</th><th>hours with a current reading %</th></tr>",
    );
    for (p, s) in e.curves.coverage() {
        let _ = write!(h, "<tr><td>{}</td><td>{:.1}</td></tr>", p.code(), s * 100.0);
    }
    h.push_str("</table>");
    let n = &e.counts;
    let _ = write!(
        h,
        "<p>{} readings scored; {} cells missing; {} cells of columns Vigil does not score ignored; {} stays rejected.</p>",
        n.accepted,
        n.missing,
        n.ignored_total(),
        n.rejected_stays.len()
    );
    h.push_str("<table><tr><th>values rejected, by reason</th><th>count</th></tr>");
    for (reason, count) in &n.rejected {
        let _ = write!(h, "<tr><td>{}</td><td>{count}</td></tr>", escape(reason));
    }
    h.push_str("</table>");
    h.push_str(
        "<h2>Data and citations</h2><p class=\"note\">When the data are the PhysioNet/Computing in Cardiology Challenge 2019 \
         (CC BY 4.0): Reyna MA et al., Early Prediction of Sepsis From Clinical Data: the PhysioNet/Computing in Cardiology \
         Challenge 2019, Crit Care Med 2020;48(2):210-217; Reyna M et al., PhysioNet (2019), doi:10.13026/v64v-d857; \
         Goldberger A et al., PhysioBank, PhysioToolkit, and PhysioNet, Circulation 2000;101(23):e215-e220.</p></body></html>",
    );
    Ok(h)
}
