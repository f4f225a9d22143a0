//! Integration tests against the local stack (moto over the wire), one
//! binary so the workspace links the AWS SDK into one test executable.

mod aggregations;
mod auth;
mod billing;
mod bounded_reads;
mod clients;
mod concurrency;
mod costs;
mod customer_crm;
mod customer_keys;
mod customer_pool;
mod customer_register;
mod events;
mod faults;
mod floating;
mod hardening;
mod input;
mod isolation;
mod licensing;
mod metering;
mod portal;
mod portal_browser;
mod portal_org;
mod portal_org_browser;
mod props;
mod provisioning;
mod roundtrips;
mod search;
mod signing;
mod stripe;
mod stripe_meters;
mod trials;
mod usage_scale;
mod webhooks;
