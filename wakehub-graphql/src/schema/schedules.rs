//! Power schedules: start, stop or keep on nodes (by name or tag) at cron times read in a
//! time zone (`powerSchedules`, `savePowerSchedule`, `deletePowerSchedule`). A caller sees,
//! saves or deletes a schedule only when its scope covers every node the schedule reaches.

use async_graphql::{Context, Enum, InputObject, Object};
use wakehub_core::engine::{Engine, Selection, describe_schedule};
use wakehub_core::model::{ErrorCode, Role};
use wakehub_core::store::{PowerSchedule, ScheduleAction};

use super::access::{RoleGuard, caller};
use super::error::{ApiResultExt, api_error};
use super::maintenance::{check_scope, sees_all};
use super::shared::{View, time};

/// What a power schedule does at its time.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ScheduleAction")]
pub enum GqlScheduleAction {
    /// Start its nodes (a start cascade each).
    Start,
    /// Stop its nodes (a stop cascade each).
    Stop,
    /// Start its nodes and keep them on for `keepForSecs`: nothing stops them on its own
    /// meanwhile (a person still can).
    KeepOn,
}

impl From<GqlScheduleAction> for ScheduleAction {
    fn from(a: GqlScheduleAction) -> Self {
        match a {
            GqlScheduleAction::Start => ScheduleAction::Start,
            GqlScheduleAction::Stop => ScheduleAction::Stop,
            GqlScheduleAction::KeepOn => ScheduleAction::KeepOn,
        }
    }
}

fn action_of(a: ScheduleAction) -> GqlScheduleAction {
    match a {
        ScheduleAction::Stop => GqlScheduleAction::Stop,
        ScheduleAction::KeepOn => GqlScheduleAction::KeepOn,
        _ => GqlScheduleAction::Start,
    }
}

/// A power schedule.
pub struct GqlPowerSchedule(pub PowerSchedule);

#[Object(name = "PowerSchedule")]
impl GqlPowerSchedule {
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it does.
    async fn action(&self) -> GqlScheduleAction {
        action_of(self.0.action)
    }
    /// Nodes by name.
    async fn nodes(&self) -> &[String] {
        &self.0.nodes
    }
    /// Nodes by tag.
    async fn tags(&self) -> &[String] {
        &self.0.tags
    }
    /// Its cron schedule.
    async fn schedule(&self) -> &str {
        &self.0.schedule
    }
    /// What the schedule means, in English.
    async fn schedule_description(&self) -> Option<String> {
        describe_schedule(&self.0.schedule)
    }
    /// The time zone it is read in (null: UTC).
    async fn timezone(&self) -> Option<&str> {
        self.0.timezone.as_deref()
    }
    /// For `KEEP_ON`: how long its nodes are kept on after each time (seconds).
    async fn keep_for_secs(&self) -> Option<i64> {
        self.0.keep_for_secs
    }
    /// Whether it fires.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Its next times (RFC 3339), `count` of them (1 to 20, default 5).
    async fn next_runs(&self, count: Option<i32>) -> Vec<String> {
        let count = usize::try_from(count.unwrap_or(5).clamp(1, 20)).unwrap_or(5);
        Engine::next_runs(&self.0, super::shared::now_ms(), count).into_iter().map(time).collect()
    }
    /// When it last fired (its time, RFC 3339).
    async fn last_fired_at(&self) -> Option<String> {
        self.0.last_fired.as_ref().map(|(at, _)| time(*at))
    }
    /// What came of it (`start requested for 2 nodes`, `skipped: …`).
    async fn last_outcome(&self) -> Option<&str> {
        self.0.last_fired.as_ref().map(|(_, o)| o.as_str())
    }
    /// For `KEEP_ON`: until when its nodes are held now (null: not now).
    async fn active_until(&self) -> Option<String> {
        let ((at, outcome), keep) = self.0.last_fired.as_ref().zip(self.0.keep_for_secs)?;
        let until = at + keep * 1000;
        let now = super::shared::now_ms();
        (self.0.enabled && until > now && !outcome.starts_with("skipped")).then(|| time(until))
    }
    /// Who wrote it last.
    async fn updated_by(&self) -> &str {
        &self.0.updated_by
    }
    /// When (RFC 3339).
    async fn updated_at(&self) -> String {
        time(self.0.updated_at)
    }
}

/// A power schedule to save.
#[derive(InputObject)]
pub struct PowerScheduleInput {
    /// Its name (letters, digits, `-`, `_`, `.`; replaces the schedule of that name).
    pub name: String,
    /// What it does.
    pub action: GqlScheduleAction,
    /// Nodes by name.
    #[graphql(default)]
    pub nodes: Vec<String>,
    /// Nodes by tag.
    #[graphql(default)]
    pub tags: Vec<String>,
    /// A cron schedule (`0 7 * * MON-FRI`).
    pub schedule: String,
    /// The time zone it is read in (IANA, `Europe/Paris`); null: UTC.
    pub timezone: Option<String>,
    /// For `KEEP_ON` (required there, refused elsewhere): seconds, 60 to 604800.
    pub keep_for_secs: Option<i64>,
    /// Whether it fires.
    #[graphql(default = true)]
    pub enabled: bool,
}

fn selection(s: &PowerSchedule) -> Selection {
    Selection { nodes: s.nodes.clone(), tags: s.tags.clone() }
}

/// Part of [`Query`](super::Query): `powerSchedules`.
#[derive(Default)]
pub struct SchedulesQuery;

#[Object]
impl SchedulesQuery {
    /// The power schedules whose nodes the caller all sees.
    #[graphql(complexity = "super::LIST_FANOUT * child_complexity")]
    async fn power_schedules(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GqlPowerSchedule>> {
        let view = View::load(ctx).await?;
        let all = ctx.data::<Engine>()?.store().run(|s| s.power_schedules()).await.api()?;
        Ok(all.into_iter().filter(|s| sees_all(&view, &selection(s))).map(GqlPowerSchedule).collect())
    }
}

/// Part of [`Mutation`](super::Mutation): `savePowerSchedule`, `deletePowerSchedule`.
#[derive(Default)]
pub struct SchedulesMutation;

#[Object]
impl SchedulesMutation {
    /// Saves a power schedule (`VALIDATION` with the reason when it cannot be; `FORBIDDEN`
    /// when its tags reach nodes outside the caller's scope).
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn save_power_schedule(
        &self,
        ctx: &Context<'_>,
        input: PowerScheduleInput,
    ) -> async_graphql::Result<GqlPowerSchedule> {
        let view = View::load(ctx).await?;
        let new = PowerSchedule::new(input.name, input.action.into(), input.schedule, input.nodes, input.tags)
            .in_zone(input.timezone)
            .keeping_for(input.keep_for_secs)
            .enabled(input.enabled);
        check_scope(&view, &selection(&new))?;
        let engine = ctx.data::<Engine>()?;
        let name = new.name.clone();
        if let Some(old) = engine.store().run(move |s| s.power_schedule(&name)).await.api()?
            && !sees_all(&view, &selection(&old))
        {
            return Err(api_error(
                ErrorCode::Forbidden,
                format!("schedule `{}` is not the caller's to change", new.name),
            ));
        }
        Ok(GqlPowerSchedule(engine.save_power_schedule(new, &caller(ctx).name).await.api()?))
    }

    /// Deletes a power schedule; false if there was none.
    #[graphql(guard = "RoleGuard(Role::Operator)")]
    async fn delete_power_schedule(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<bool> {
        let view = View::load(ctx).await?;
        let engine = ctx.data::<Engine>()?;
        let n = name.clone();
        match engine.store().run(move |s| s.power_schedule(&n)).await.api()? {
            None => Ok(false),
            Some(old) if !sees_all(&view, &selection(&old)) => {
                Err(api_error(ErrorCode::NotFound, format!("schedule `{name}` not found")))
            }
            Some(_) => engine.delete_power_schedule(&name).await.api(),
        }
    }
}
