//! `wakehub energy`: a month's energy report from the server's database — per node and tag,
//! drawn against always on, and the saving.

use std::path::PathBuf;

use anyhow::Context as _;
use wakehub_core::energy::{Price, by_tag, energy, month, this_month};

/// Prints the report of `month` (default: this one) for the database `db`; with `price`,
/// in money too (else the price the server was given, if any).
pub(crate) fn report(
    db: Option<PathBuf>,
    month_name: Option<String>,
    price: Option<f64>,
    currency: &str,
    json: bool,
) -> anyhow::Result<()> {
    let db = crate::database::db_path(db)?;
    let store = crate::database::open_store(&db)?;
    let month_name = month_name.unwrap_or_else(this_month);
    let (from, to) = month(&month_name).map_err(anyhow::Error::msg)?;
    let price = match price {
        Some(p) => Some(Price::new(p, currency).map_err(anyhow::Error::msg)?),
        None => store.energy_price()?,
    };
    let nodes = energy(&store, from, to).context("reading the journal")?;
    let money = |kwh: f64| price.as_ref().map(|p| format!("{:.2} {}", kwh * p.per_kwh, p.currency));
    if json {
        let v = serde_json::json!({
            "month": month_name,
            "nodes": nodes.iter().map(|n| serde_json::json!({
                "name": n.name, "onHours": n.tally.on_ms as f64 / 3.6e6, "offHours": n.tally.off_ms as f64 / 3.6e6,
                "usedKwh": n.used_kwh, "alwaysOnKwh": n.always_on_kwh, "savedKwh": n.saved_kwh(),
                "savedMoney": price.as_ref().map(|p| p.per_kwh * n.saved_kwh()),
            })).collect::<Vec<_>>(),
            "currency": price.as_ref().map(|p| p.currency.clone()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if nodes.is_empty() {
        println!("No node has a power draw (`watts` in its table): nothing to report for {month_name}.");
        return Ok(());
    }
    println!("Energy, {month_name} (UTC)");
    println!(
        "{:<24} {:>8} {:>8} {:>10} {:>10} {:>10}  saved",
        "node", "on h", "off h", "used kWh", "always-on", "saved kWh"
    );
    for n in &nodes {
        println!(
            "{:<24} {:>8.1} {:>8.1} {:>10.2} {:>10.2} {:>10.2}  {}",
            n.name,
            n.tally.on_ms as f64 / 3.6e6,
            n.tally.off_ms as f64 / 3.6e6,
            n.used_kwh,
            n.always_on_kwh,
            n.saved_kwh(),
            money(n.saved_kwh()).unwrap_or_default()
        );
    }
    for (tag, (used, always)) in by_tag(&nodes) {
        println!(
            "tag {:<20} {:>28.2} {:>10.2} {:>10.2}  {}",
            tag,
            used,
            always,
            always - used,
            money(always - used).unwrap_or_default()
        );
    }
    let (used, always): (f64, f64) = nodes.iter().fold((0.0, 0.0), |(u, a), n| (u + n.used_kwh, a + n.always_on_kwh));
    println!(
        "{:<24} {:>28.2} {:>10.2} {:>10.2}  {}",
        "total",
        used,
        always,
        always - used,
        money(always - used).unwrap_or_default()
    );
    Ok(())
}
