//! Resource samples of a running action inside its REAPI operation: a sykli worker (or serve,
//! for its joined workers) puts the latest sample of the action's processes in the operation's
//! `ExecuteOperationMetadata.partial_execution_metadata.auxiliary_metadata` about once a
//! second, so everything that follows the operation sees it the same way: the server's own
//! observers and the sykli client, whose task then reports `task_resources` like a local one.
//! Other REAPI clients ignore auxiliary metadata they do not know.

use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
use bazel_remote_apis::google::longrunning::Operation;
use bazel_remote_apis::google::protobuf::Any;
use prost::Message;

use crate::observe::resources::Sample;

/// The `type_url` of a [`ResourceSample`] in auxiliary metadata.
pub const SAMPLE_TYPE_URL: &str = "type.googleapis.com/sykli.remote.v1.ResourceSample";

/// One sample as it travels (see [`Sample`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceSample {
    /// CPU since the previous sample, in percent of one core.
    #[prost(double, tag = "1")]
    pub cpu_percent: f64,
    /// Resident memory now, in bytes.
    #[prost(uint64, tag = "2")]
    pub rss_bytes: u64,
}

/// Puts `sample` in `op`'s metadata (replacing an earlier one); false when `op` is done or
/// carries no `ExecuteOperationMetadata` (nothing changed).
pub fn attach(op: &mut Operation, sample: Sample) -> bool {
    if op.done {
        return false;
    }
    let Some(any) = op.metadata.as_mut() else {
        return false;
    };
    let Ok(mut meta) = reapi::ExecuteOperationMetadata::decode(&any.value[..]) else {
        return false;
    };
    let encoded = Any {
        type_url: SAMPLE_TYPE_URL.into(),
        value: ResourceSample {
            cpu_percent: sample.cpu_percent,
            rss_bytes: sample.rss_bytes,
        }
        .encode_to_vec(),
    };
    let partial = meta
        .partial_execution_metadata
        .get_or_insert_with(Default::default);
    partial
        .auxiliary_metadata
        .retain(|a| a.type_url != SAMPLE_TYPE_URL);
    partial.auxiliary_metadata.push(encoded);
    any.value = meta.encode_to_vec();
    true
}

/// The sample in an operation's decoded metadata, if a sykli server put one there.
pub fn read(meta: &reapi::ExecuteOperationMetadata) -> Option<Sample> {
    let any = meta
        .partial_execution_metadata
        .as_ref()?
        .auxiliary_metadata
        .iter()
        .find(|a| a.type_url == SAMPLE_TYPE_URL)?;
    let s = ResourceSample::decode(&any.value[..]).ok()?;
    Some(Sample {
        cpu_percent: s.cpu_percent,
        rss_bytes: s.rss_bytes,
    })
}

/// [`read`] of an operation's raw metadata.
pub fn of_operation(op: &Operation) -> Option<Sample> {
    let any = op.metadata.as_ref()?;
    read(&reapi::ExecuteOperationMetadata::decode(&any.value[..]).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::digest::DigestFunction;
    use crate::remote::server::digests::BlobDigest;
    use crate::remote::server::execution::operation;
    use bazel_remote_apis::build::bazel::remote::execution::v2::execution_stage::Value as Stage;

    #[test]
    fn a_sample_rides_in_the_operation_and_replaces_the_previous_one() {
        let action = BlobDigest::of(DigestFunction::Blake3, b"action");
        let mut op = operation(
            "operations/x",
            Stage::Executing,
            DigestFunction::Blake3,
            &action,
            None,
        );
        assert_eq!(of_operation(&op), None);
        let first = Sample {
            cpu_percent: 12.5,
            rss_bytes: 4096,
        };
        assert!(attach(&mut op, first));
        assert_eq!(of_operation(&op), Some(first));
        let second = Sample {
            cpu_percent: 99.0,
            rss_bytes: 1 << 20,
        };
        assert!(attach(&mut op, second));
        assert_eq!(of_operation(&op), Some(second));
        let meta =
            reapi::ExecuteOperationMetadata::decode(&op.metadata.as_ref().unwrap().value[..])
                .unwrap();
        assert_eq!(
            meta.partial_execution_metadata
                .unwrap()
                .auxiliary_metadata
                .len(),
            1
        );
        let mut done = operation(
            "operations/x",
            Stage::Completed,
            DigestFunction::Blake3,
            &action,
            Some(Default::default()),
        );
        assert!(!attach(&mut done, first), "a done operation is left alone");
    }
}
