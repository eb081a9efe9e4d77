//! Service Usage v1 with state: `services.{enable,batchEnable,get,list}` and
//! `operations.get`, kept in memory.
//!
//! As Google does: every API of a project starts `DISABLED`; enabling answers a long-running
//! operation that finishes after [`Behaviour::operation_delay`], and the API reads `ENABLED`
//! from then on; enabling an API that is already enabled answers an operation that is done at
//! once. `disable` is not served: weir never disables an API (something else in the project
//! may use it), and a request for it gets the sandbox's 501, so a record shows any attempt.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde_json::{Value, json};

use crate::run_jobs::Behaviour;
use crate::run_jobs::error;
use crate::validate::Request;

const ENABLE_RESPONSE: &str =
    "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse";
const BATCH_ENABLE_RESPONSE: &str =
    "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse";
const METADATA: &str = "type.googleapis.com/google.api.serviceusage.v1.OperationMetadata";

/// The enabled APIs and the operations enabling them.
#[derive(Default)]
pub(crate) struct Store {
    /// From when each API is enabled, by name (`projects/p/services/run.googleapis.com`).
    enabled: BTreeMap<String, Instant>,
    operations: HashMap<String, Operation>,
    /// Counts operations: their names come from it.
    count: u64,
}

struct Operation {
    /// The names of the APIs it enables.
    services: Vec<String>,
    /// The `@type` of its `response`.
    response_type: &'static str,
    ready_at: Instant,
}

/// The answer to a request to Service Usage that the documents accepted as `method_id`, or
/// `None` when the sandbox does not serve that method.
pub(crate) fn answer(
    store: &mut Store,
    behaviour: &Behaviour,
    method_id: &str,
    request: &Request,
) -> Option<(u16, Value)> {
    let name = request.path.strip_prefix("/v1/")?;
    Some(match method_id {
        "serviceusage.services.enable" => {
            let service = name.strip_suffix(":enable")?;
            store.enable(behaviour, vec![service.to_owned()], ENABLE_RESPONSE)
        }
        "serviceusage.services.batchEnable" => {
            let parent = name.strip_suffix("/services:batchEnable")?;
            let ids: Vec<String> = request
                .body
                .as_ref()
                .and_then(|b| b.get("serviceIds"))
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .map(|id| format!("{parent}/services/{id}"))
                        .collect()
                })
                .unwrap_or_default();
            if ids.is_empty() || ids.len() > 20 {
                return Some(error(
                    400,
                    "INVALID_ARGUMENT",
                    format!("serviceIds must name 1 to 20 services, not {}.", ids.len()),
                ));
            }
            store.enable(behaviour, ids, BATCH_ENABLE_RESPONSE)
        }
        "serviceusage.services.get" => (200, store.service(name)),
        "serviceusage.services.list" => {
            let parent = name.strip_suffix("/services")?;
            let filter = request.query_value("filter");
            // Only the APIs the sandbox knows of: the ones enabled (a real project lists
            // every public API, nearly all disabled).
            let prefix = format!("{parent}/services/");
            let services: Vec<Value> = match filter {
                Some("state:DISABLED") => Vec::new(),
                _ => store
                    .enabled
                    .keys()
                    .filter(|k| k.starts_with(&prefix))
                    .map(|k| store.service(k))
                    .filter(|s| s["state"] == "ENABLED")
                    .collect(),
            };
            (
                200,
                if services.is_empty() {
                    json!({})
                } else {
                    json!({ "services": services })
                },
            )
        }
        "serviceusage.operations.get" => match store.operations.get(name) {
            Some(op) => (200, store.operation_json(name, op)),
            None => error(
                404,
                "NOT_FOUND",
                format!("Operation '{name}' was not found."),
            ),
        },
        _ => return None,
    })
}

impl Store {
    /// The API `name` (`projects/p/services/s`) as `services.get` answers it.
    fn service(&self, name: &str) -> Value {
        let enabled = self
            .enabled
            .get(name)
            .is_some_and(|from| Instant::now() >= *from);
        let (parent, id) = name.split_once("/services/").unwrap_or((name, ""));
        json!({
            "name": name,
            "parent": parent,
            "config": {"name": id},
            "state": if enabled { "ENABLED" } else { "DISABLED" },
        })
    }

    /// Starts enabling `services` and answers the operation: done at once when they are all
    /// enabled already.
    fn enable(
        &mut self,
        behaviour: &Behaviour,
        services: Vec<String>,
        response_type: &'static str,
    ) -> (u16, Value) {
        let now = Instant::now();
        let noop = services
            .iter()
            .all(|s| self.enabled.get(s).is_some_and(|from| now >= *from));
        let ready_at = if noop {
            now
        } else {
            now + behaviour.operation_delay
        };
        for s in &services {
            self.enabled.entry(s.clone()).or_insert(ready_at);
        }
        self.count += 1;
        let name = if noop {
            "operations/noop.DONE_OPERATION".to_owned()
        } else {
            format!("operations/acf.p2-{:012x}", self.count)
        };
        let op = Operation {
            services,
            response_type,
            ready_at,
        };
        let answer = self.operation_json(&name, &op);
        self.operations.insert(name, op);
        (200, answer)
    }

    fn operation_json(&self, name: &str, op: &Operation) -> Value {
        let done = Instant::now() >= op.ready_at;
        let mut answer = json!({"name": name, "metadata": {"@type": METADATA}, "done": done});
        if done {
            let services: Vec<Value> = op.services.iter().map(|s| self.service(s)).collect();
            answer["response"] = if op.response_type == ENABLE_RESPONSE {
                json!({"@type": op.response_type, "service": services.first()})
            } else {
                json!({"@type": op.response_type, "services": services})
            };
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_api_is_enabled_when_its_operation_is_done_and_enabling_it_again_is_done_at_once() {
        let mut store = Store::default();
        let slow = Behaviour {
            operation_delay: Duration::from_millis(100),
            ..Behaviour::default()
        };
        let run = "/v1/projects/p/services/run.googleapis.com";
        let get = |store: &mut Store| {
            answer(
                store,
                &slow,
                "serviceusage.services.get",
                &Request::new("GET", run),
            )
            .unwrap()
            .1["state"]
                .clone()
        };
        assert_eq!(get(&mut store), "DISABLED");
        let (_, op) = answer(
            &mut store,
            &slow,
            "serviceusage.services.enable",
            &Request::new("POST", &format!("{run}:enable")),
        )
        .unwrap();
        assert_eq!(op["done"], false);
        assert_eq!(get(&mut store), "DISABLED");
        std::thread::sleep(Duration::from_millis(150));
        let name = op["name"].as_str().unwrap();
        let (_, polled) = answer(
            &mut store,
            &slow,
            "serviceusage.operations.get",
            &Request::new("GET", &format!("/v1/{name}")),
        )
        .unwrap();
        assert_eq!(polled["done"], true);
        assert_eq!(polled["response"]["service"]["state"], "ENABLED");
        assert_eq!(get(&mut store), "ENABLED");
        let (_, again) = answer(
            &mut store,
            &slow,
            "serviceusage.services.enable",
            &Request::new("POST", &format!("{run}:enable")),
        )
        .unwrap();
        assert_eq!(again["done"], true);
        // Disabling is not served: weir never does it.
        assert!(
            answer(
                &mut store,
                &slow,
                "serviceusage.services.disable",
                &Request::new("POST", &format!("{run}:disable")),
            )
            .is_none()
        );
    }

    #[test]
    fn a_batch_enables_every_api_it_names_and_the_list_shows_the_enabled_ones() {
        let mut store = Store::default();
        let now = Behaviour::default();
        let mut batch = Request::new("POST", "/v1/projects/p/services:batchEnable");
        batch.body = Some(json!({"serviceIds": ["run.googleapis.com", "iam.googleapis.com"]}));
        let (status, op) = answer(
            &mut store,
            &now,
            "serviceusage.services.batchEnable",
            &batch,
        )
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(op["done"], true);
        assert_eq!(op["response"]["services"][1]["state"], "ENABLED");
        let (_, list) = answer(
            &mut store,
            &now,
            "serviceusage.services.list",
            &Request::new("GET", "/v1/projects/p/services"),
        )
        .unwrap();
        let names: Vec<&str> = list["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["config"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["iam.googleapis.com", "run.googleapis.com"]);
        batch.body = Some(json!({"serviceIds": []}));
        let (status, _) = answer(
            &mut store,
            &now,
            "serviceusage.services.batchEnable",
            &batch,
        )
        .unwrap();
        assert_eq!(status, 400);
    }
}
