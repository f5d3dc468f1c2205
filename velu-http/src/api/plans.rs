//! `GET /v1/plans`, `GET /v1/plans/{plan}`, `GET /v1/tasks` (public).

use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use velu_core::{Velu, plans, tasks};

use super::Tag;
use crate::auth::MaybeAuth;
use crate::model::plans::{PlanInfo, PlanList, TaskList};
use crate::problem::ApiResult;

/// Plans and the task catalog.
pub struct PlansApi;

#[OpenApi(tag = "Tag::Plans")]
impl PlansApi {
    /// List the plans with their limits and task kinds. Public; a key, if sent, is
    /// checked (Any valid key).
    #[oai(path = "/v1/plans", method = "get", operation_id = "plans.list")]
    async fn list(&self, velu: Data<&Velu>, _auth: MaybeAuth) -> ApiResult<Json<PlanList>> {
        Ok(Json(plans::list_plans(velu.tasks()).into()))
    }

    /// Show one plan. Public; a key, if sent, is checked (Any valid key).
    #[oai(path = "/v1/plans/:plan", method = "get", operation_id = "plans.show")]
    async fn show(
        &self,
        velu: Data<&Velu>,
        _auth: MaybeAuth,
        plan: Path<String>,
    ) -> ApiResult<Json<PlanInfo>> {
        Ok(Json(plans::show_plan(velu.tasks(), &plan)?.into()))
    }

    /// List the task kinds with the minimum plan of each. Public; a key, if sent, is
    /// checked (Any valid key).
    #[oai(path = "/v1/tasks", method = "get", operation_id = "tasks.list")]
    async fn tasks(&self, velu: Data<&Velu>, _auth: MaybeAuth) -> ApiResult<Json<TaskList>> {
        Ok(Json(tasks::list_tasks(velu.tasks()).into()))
    }
}
