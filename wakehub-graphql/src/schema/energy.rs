//! The energy report: per node (those with a power draw the caller sees), per tag and in
//! total, what was drawn in a month against always on, and the saving in kWh and money
//! (`energy`); the price per kWh (`setEnergyPrice`, admins of every node).

use async_graphql::{Context, InputObject, Object, SimpleObject};
use wakehub_core::energy::{NodeEnergy, Price, by_tag, energy, month, this_month};
use wakehub_core::engine::Engine;
use wakehub_core::model::{ErrorCode, PowerDraw, Role};

use super::access::caller;
use super::error::{ApiResultExt, api_error};
use super::shared::{View, time};

/// What a node draws, in watts: configured, or read by a meter.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(name = "PowerDraw", input_name = "PowerDrawInput")]
pub struct GqlPowerDraw {
    /// While on (or starting, stopping); with a meter, what is assumed until it has read
    /// the node on.
    #[graphql(default)]
    pub on: f64,
    /// While off (standby).
    #[graphql(default)]
    pub off: f64,
    /// The node whose connector measures its draw (itself, or the smart plug it is plugged
    /// into); the caller must see it.
    pub meter: Option<String>,
}

impl From<&PowerDraw> for GqlPowerDraw {
    fn from(d: &PowerDraw) -> Self {
        GqlPowerDraw { on: d.on, off: d.off, meter: d.meter.clone() }
    }
}

impl GqlPowerDraw {
    /// The file's form.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        PowerDraw { on: self.on, off: self.off, meter: self.meter.clone() }.to_json()
    }
}

/// A meter's latest reading.
#[derive(SimpleObject)]
pub struct GqlMeterReading {
    /// When it was taken (RFC 3339).
    pub at: String,
    /// What it read (watts).
    pub watts: Option<f64>,
    /// Why it could not read.
    pub error: Option<String>,
}

impl From<&wakehub_core::engine::MeterReading> for GqlMeterReading {
    fn from(r: &wakehub_core::engine::MeterReading) -> Self {
        GqlMeterReading { at: time(r.at_ms), watts: r.watts.clone().ok(), error: r.watts.clone().err() }
    }
}

/// One node over the month.
#[derive(SimpleObject)]
pub struct NodeEnergyReport {
    /// The node.
    pub name: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its draw.
    pub watts: GqlPowerDraw,
    /// Hours on (or starting, stopping).
    pub on_hours: f64,
    /// Hours off.
    pub off_hours: f64,
    /// Hours not counted (before it was first seen, or unknown).
    pub unknown_hours: f64,
    /// What it drew (kWh).
    pub used_kwh: f64,
    /// What it would have drawn always on (kWh).
    pub always_on_kwh: f64,
    /// The difference (kWh).
    pub saved_kwh: f64,
    /// The difference in money, when a price is set.
    pub saved_money: Option<f64>,
    /// Whether the figures are its meter's readings (not its configured draw).
    pub measured: bool,
    /// Its average draw while on (watts): measured, or configured.
    pub on_watts: Option<f64>,
}

/// The nodes of one tag together.
#[derive(SimpleObject)]
pub struct TagEnergyReport {
    /// The tag.
    pub tag: String,
    /// What its nodes drew (kWh).
    pub used_kwh: f64,
    /// Always on (kWh).
    pub always_on_kwh: f64,
    /// Saved (kWh).
    pub saved_kwh: f64,
    /// Saved in money, when a price is set.
    pub saved_money: Option<f64>,
}

/// A month's energy.
#[derive(SimpleObject)]
pub struct EnergyReport {
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// Its first moment (RFC 3339).
    pub from: String,
    /// Its end, or now for the current month (RFC 3339).
    pub to: String,
    /// The price per kWh, if set.
    pub price_per_kwh: Option<f64>,
    /// Its currency.
    pub currency: Option<String>,
    /// Per node, by name.
    pub nodes: Vec<NodeEnergyReport>,
    /// Per tag, by name.
    pub tags: Vec<TagEnergyReport>,
    /// Every node: drawn (kWh).
    pub used_kwh: f64,
    /// Every node: always on (kWh).
    pub always_on_kwh: f64,
    /// Every node: saved (kWh).
    pub saved_kwh: f64,
    /// Every node: saved in money.
    pub saved_money: Option<f64>,
}

fn node_report(n: &NodeEnergy, price: Option<f64>) -> NodeEnergyReport {
    let hours = |ms: i64| ms as f64 / 3_600_000.0;
    NodeEnergyReport {
        name: n.name.clone(),
        tags: n.tags.iter().cloned().collect(),
        watts: (&n.draw).into(),
        on_hours: hours(n.tally.on_ms),
        off_hours: hours(n.tally.off_ms),
        unknown_hours: hours(n.tally.unknown_ms),
        used_kwh: n.used_kwh,
        always_on_kwh: n.always_on_kwh,
        saved_kwh: n.saved_kwh(),
        saved_money: price.map(|p| p * n.saved_kwh()),
        measured: n.measured,
        on_watts: n.on_watts,
    }
}

/// Part of [`Query`](super::Query): `energy`.
#[derive(Default)]
pub struct EnergyQuery;

#[Object]
impl EnergyQuery {
    /// The energy of month `month` (`YYYY-MM`, UTC; default: this month, up to now) of the
    /// nodes with a power draw that the caller sees.
    async fn energy(&self, ctx: &Context<'_>, month: Option<String>) -> async_graphql::Result<EnergyReport> {
        let view = View::load(ctx).await?;
        let month_name = month.unwrap_or_else(this_month);
        let (from, to) = self::month(&month_name).map_err(|e| api_error(ErrorCode::Validation, e))?;
        let engine = ctx.data::<Engine>()?;
        let (nodes, price) = engine
            .store()
            .run(move |s| Ok::<_, wakehub_core::store::StoreError>((energy(s, from, to)?, s.energy_price()?)))
            .await
            .api()?;
        let nodes: Vec<NodeEnergy> = nodes.into_iter().filter(|n| view.visible(n.node)).collect();
        let per = price.as_ref().map(|p| p.per_kwh);
        let tags = by_tag(&nodes)
            .into_iter()
            .map(|(tag, (used, always))| TagEnergyReport {
                tag,
                used_kwh: used,
                always_on_kwh: always,
                saved_kwh: always - used,
                saved_money: per.map(|p| p * (always - used)),
            })
            .collect();
        let used: f64 = nodes.iter().map(|n| n.used_kwh).sum();
        let always: f64 = nodes.iter().map(|n| n.always_on_kwh).sum();
        Ok(EnergyReport {
            month: month_name,
            from: time(from),
            to: time(to.min(super::shared::now_ms())),
            price_per_kwh: per,
            currency: price.map(|p| p.currency),
            nodes: nodes.iter().map(|n| node_report(n, per)).collect(),
            tags,
            used_kwh: used,
            always_on_kwh: always,
            saved_kwh: always - used,
            saved_money: per.map(|p| p * (always - used)),
        })
    }
}

/// Part of [`Mutation`](super::Mutation): `setEnergyPrice`.
#[derive(Default)]
pub struct EnergyMutation;

#[Object]
impl EnergyMutation {
    /// Sets the price of a kWh for the energy report (null: no price, no money shown).
    async fn set_energy_price(
        &self,
        ctx: &Context<'_>,
        price_per_kwh: Option<f64>,
        #[graphql(default = "EUR")] currency: String,
    ) -> async_graphql::Result<bool> {
        let c = caller(ctx);
        if !(c.role.allows(Role::Admin) && c.scope.is_all()) {
            return Err(api_error(
                ErrorCode::Forbidden,
                "setting the energy price needs the admin role with the `*` scope",
            ));
        }
        let price = price_per_kwh
            .map(|p| Price::new(p, &currency))
            .transpose()
            .map_err(|e| api_error(ErrorCode::Validation, e))?;
        ctx.data::<Engine>()?.store().run(move |s| s.set_energy_price(price.as_ref())).await.api()?;
        Ok(true)
    }
}
