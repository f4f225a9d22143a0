use shared::lambda::{cold_start, BoxError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let app = cold_start(customer::FUNCTION).await?;
    lambda_http::run(lambda_http::service_fn(|req| async {
        Ok::<_, std::convert::Infallible>(customer::handler(&app, req).await)
    }))
    .await
}
