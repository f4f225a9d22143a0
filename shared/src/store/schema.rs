//! The table's schema, for local runs and tests (in AWS the SAM template
//! owns the table). Behind the `dev` feature: no Lambda compiles it.

use super::{attrs as a, keys, sdk_error};
use crate::error::Error;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

/// The attributes GSI2 (license search) carries besides its keys: those
/// its filters read, and the license id. Not the seat counters, so an
/// activation never writes the index.
pub const GSI2_PROJECTED: [&str; 8] = [
    a::ID,
    a::KEY,
    a::STATUS,
    a::PRODUCT,
    a::POLICY,
    a::CUSTOMER_EMAIL,
    a::EXPIRES_EPOCH,
    a::GRACE_EPOCH,
];

/// Whether a table gets a stream. The deployed table always has one (the
/// webhook outbox reads it); a local table needs one only where something
/// polls it, and the emulator keeps every record a stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `NEW_AND_OLD_IMAGES`, as the SAM template's table.
    On,
    Off,
}

/// The single table: PK/SK, GSI1 (licenses by e-mail, usage by period),
/// GSI2 (license search), TTL, and the stream if asked for.
pub async fn create_table(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    stream: Stream,
) -> Result<(), Error> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(Error::internal)
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(Error::internal)
    };
    let gsi1 = GlobalSecondaryIndex::builder()
        .index_name(keys::GSI1)
        .key_schema(key(keys::GSI1PK, KeyType::Hash)?)
        .key_schema(key(keys::GSI1SK, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(Error::internal)?;
    let gsi2 = GlobalSecondaryIndex::builder()
        .index_name(keys::GSI2)
        .key_schema(key(keys::GSI2PK, KeyType::Hash)?)
        .key_schema(key(keys::GSI2SK, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(
                    GSI2_PROJECTED.iter().map(|s| s.to_string()).collect(),
                ))
                .build(),
        )
        .build()
        .map_err(Error::internal)?;
    let mut create = db
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    if stream == Stream::On {
        // The webhook outbox reads committed changes from the stream.
        create = create.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(Error::internal)?,
        );
    }
    let res = create
        .attribute_definitions(attr(keys::PK)?)
        .attribute_definitions(attr(keys::SK)?)
        .attribute_definitions(attr(keys::GSI1PK)?)
        .attribute_definitions(attr(keys::GSI1SK)?)
        .attribute_definitions(attr(keys::GSI2PK)?)
        .attribute_definitions(attr(keys::GSI2SK)?)
        .key_schema(key(keys::PK, KeyType::Hash)?)
        .key_schema(key(keys::SK, KeyType::Range)?)
        .global_secondary_indexes(gsi1)
        .global_secondary_indexes(gsi2)
        .send()
        .await;
    match res {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
        Err(e) => return Err(sdk_error("CreateTable", e)),
    }
    // Wait until the table is ACTIVE (immediate on moto, seconds on AWS).
    for _ in 0..120 {
        let d = db
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTable", e))?;
        if d.table()
            .and_then(|t| t.table_status())
            .map(|s| s.as_str() == "ACTIVE")
            .unwrap_or(false)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    db.update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(keys::TTL)
                .enabled(true)
                .build()
                .map_err(Error::internal)?,
        )
        .send()
        .await
        .map_err(|e| sdk_error("UpdateTimeToLive", e))?;
    Ok(())
}

pub async fn delete_table(db: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), Error> {
    match db.delete_table().table_name(table).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
        Err(e) => Err(sdk_error("DeleteTable", e)),
    }
}
