//! Routing from the route table ([`crate::functions::ROUTES`]): one router
//! per function (and one of every route, for the dev server), the 404 / 405
//! of a path a function does not serve, and each answer's surface.

use crate::error::Error;
use crate::functions::{Function, Route, Surface, ROUTES};
use std::collections::HashMap;
use std::sync::OnceLock;

type Routers = HashMap<Option<Function>, matchit::Router<Vec<&'static Route>>>;

fn routers() -> &'static Routers {
    static R: OnceLock<Routers> = OnceLock::new();
    R.get_or_init(|| {
        // Group routes by (function, path), then build one router per function.
        let mut grouped: HashMap<Option<Function>, Vec<(&'static str, Vec<&'static Route>)>> =
            HashMap::new();
        for route in ROUTES {
            for key in [None, route.function]
                .into_iter()
                .collect::<std::collections::HashSet<_>>()
            {
                let paths = grouped.entry(key).or_default();
                match paths.iter_mut().find(|(p, _)| *p == route.path) {
                    Some((_, v)) => v.push(route),
                    None => paths.push((route.path, vec![route])),
                }
            }
        }
        grouped
            .into_iter()
            .map(|(key, paths)| {
                let mut router = matchit::Router::new();
                for (path, routes) in paths {
                    router
                        .insert(matchit_path(path), routes)
                        .unwrap_or_else(|e| panic!("route table: {e}"));
                }
                (key, router)
            })
            .collect()
    })
}

/// API Gateway's greedy `{name+}` (the rest of the path) as matchit writes it.
fn matchit_path(path: &str) -> String {
    match path.strip_suffix("+}").and_then(|p| p.rsplit_once('{')) {
        Some((head, name)) => format!("{head}{{*{name}}}"),
        None => path.to_string(),
    }
}

/// The route `function` serves `method path` with, and its path parameters
/// (percent-decoded). A path it does not serve is answered from the whole
/// table, so a deployment's catch-all route gives 405 for a known path and
/// 404 for the rest.
pub(super) fn resolve(
    function: Option<Function>,
    method: &str,
    path: &str,
) -> Result<(&'static Route, HashMap<String, String>), Error> {
    let all = routers()
        .get(&None)
        .ok_or_else(|| Error::internal("no route table"))?;
    let matched = routers().get(&function).and_then(|r| r.at(path).ok());
    let route = matched.as_ref().and_then(|m| {
        m.value
            .iter()
            .find(|r| r.method == method || r.method == "ANY")
            .copied()
    });
    let Some(route) = route else {
        return Err(match all.at(path) {
            Ok(m) => {
                let mut allow: Vec<&'static str> = m.value.iter().map(|r| r.method).collect();
                allow.sort_unstable();
                allow.dedup();
                if allow.contains(&method) {
                    Error::not_found(
                        "ROUTE_NOT_FOUND",
                        format!("no route for {method} {path} in this function"),
                    )
                } else {
                    Error::MethodNotAllowed {
                        method: method.to_string(),
                        allow,
                    }
                }
            }
            Err(_) => Error::not_found("ROUTE_NOT_FOUND", format!("no route for {path}")),
        });
    };
    let Some(matched) = matched else {
        return Err(Error::internal("route matched without a match"));
    };
    tracing::Span::current().record("route", route.path);
    // Path parameters arrive percent-encoded; decode them once here.
    let mut params = HashMap::new();
    for (k, v) in matched.params.iter() {
        let decoded = percent_decode(v)
            .ok_or_else(|| Error::validation(format!("path parameter {k} is not valid UTF-8")))?;
        params.insert(k.to_string(), decoded);
    }
    Ok((route, params))
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The surface whose answer this is: the route's, or — when no route serves
/// the path (404, 405) — that of the routes in the same section of the table.
pub(super) fn surface_of(method: &str, path: &str) -> Option<Surface> {
    route_for(method, path)
        .map(Route::surface)
        .or_else(|| Surface::of_unrouted(path))
}

/// The route a request would take (the dev server uses it to pick the function).
pub fn route_for(method: &str, path: &str) -> Option<&'static Route> {
    let m = routers().get(&None)?.at(path).ok()?;
    m.value
        .iter()
        .find(|r| r.method == method || r.method == "ANY")
        .copied()
        .or_else(|| m.value.first().copied())
}
