//! The `portal` function: the HTML pages under `/portal/` (one greedy route,
//! `ANY /portal/{proxy+}`); the behaviour lives in `shared::portal`.

use lambda_http::{Body, Request, Response};
use shared::app::App;
use shared::functions::Function;

pub const FUNCTION: Function = Function::Portal;

/// Serve one API Gateway (HTTP API v2) request.
pub async fn handler(app: &App, req: Request) -> Response<Body> {
    shared::portal::handle(app, req).await
}
