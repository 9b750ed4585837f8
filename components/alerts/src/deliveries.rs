//! The delivery log (`GET /v1/dashboard/alerts/deliveries`), "send test" and "redeliver": both
//! send now, in the request, and answer the delivery after its attempt.

use domain::token::Scope;
use platform::ApiError;
use platform::auth::authenticate;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

use crate::deliver::{deliver_now, lease_from_now};
use crate::store::{AlertStore, Delivery};

#[derive(Serialize)]
struct Log {
    deliveries: Vec<Delivery>,
}

pub fn list_deliveries(req: &Request) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let deliveries = AlertStore::new(ctx.db()?).deliveries()?;
    platform::response::json(200, &Log { deliveries })
}

/// Sends a `test` event to the rule's destination.
pub fn send_test(req: &Request, rule_id: &str) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let store = AlertStore::new(ctx.db()?);
    if store.rule(rule_id)?.is_none() {
        return Err(crate::rules::not_found(rule_id));
    }
    let id = store.queue_test(rule_id, lease_from_now())?;
    deliver_now(&store, ctx.tenant().plan, &id)?;
    answer(&store, &id)
}

/// Queues a delivery again, with the same `webhook-id`, and sends it.
pub fn redeliver(req: &Request, id: &str) -> Result<Response, ApiError> {
    let ctx = authenticate(req, Scope::Dashboard)?;
    let store = AlertStore::new(ctx.db()?);
    if store.redeliver(id, lease_from_now())?.is_none() {
        return Err(ApiError::NotFound {
            code: "alert_delivery_not_found",
            detail: format!(
                "no delivery {id} from the last {} days",
                crate::store::KEPT_DAYS
            ),
        });
    }
    deliver_now(&store, ctx.tenant().plan, id)?;
    answer(&store, id)
}

fn answer(store: &AlertStore, id: &str) -> Result<Response, ApiError> {
    let delivery = store.delivery(id)?.ok_or_else(|| ApiError::NotFound {
        code: "alert_delivery_not_found",
        detail: format!("no delivery {id}"),
    })?;
    platform::response::json(200, &delivery)
}
