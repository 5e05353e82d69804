//! An in-process Kafka-protocol broker: librdkafka's mock cluster.
//!
//! It listens on local TCP ports, so any Kafka client (this process, a `vigil` child
//! process, kcat) can reach it through [`MockBroker::bootstrap_servers`]. It supports
//! consumer groups, commits, rebalances and broker down/up injection; it has no
//! CreateTopics API, so topics are created here. Used by `vigil demo` and the tests. The
//! mock cluster is not `Send`: keep the `MockBroker` on the thread that made it.

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{BaseProducer, Producer};

/// A running mock cluster, alive as long as this value.
pub struct MockBroker {
    // The mock cluster belongs to this client (created through `test.mock.num.brokers`).
    owner: BaseProducer,
}

impl MockBroker {
    /// Starts a cluster of `brokers` brokers (ids 1..=brokers) with no initial group
    /// rebalance delay (a real broker's default of 3 s would only slow tests and demos).
    ///
    /// # Errors
    ///
    /// When librdkafka cannot create the cluster.
    #[allow(unsafe_code)]
    pub fn start(brokers: i32) -> KafkaResult<MockBroker> {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .create()?;
        // SAFETY: the handle is a live client created above; the mock cluster pointer it
        // returns lives as long as that client, which this value owns. The call only sets
        // an integer in the cluster's configuration.
        unsafe {
            let cluster = rdkafka_sys::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
            if cluster.is_null() {
                return Err(KafkaError::MockCluster(
                    rdkafka::types::RDKafkaErrorCode::Fail,
                ));
            }
            rdkafka_sys::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
        }
        Ok(MockBroker { owner })
    }

    fn with_cluster<T>(
        &self,
        f: impl FnOnce(
            &rdkafka::mocking::MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
        ) -> KafkaResult<T>,
    ) -> KafkaResult<T> {
        let cluster = self
            .owner
            .client()
            .mock_cluster()
            .ok_or(KafkaError::MockCluster(
                rdkafka::types::RDKafkaErrorCode::Fail,
            ))?;
        f(&cluster)
    }

    /// The `bootstrap.servers` list of the cluster's TCP listeners.
    pub fn bootstrap_servers(&self) -> String {
        self.with_cluster(|c| Ok(c.bootstrap_servers()))
            .unwrap_or_default()
    }

    /// Creates `topic` with `partitions` partitions.
    ///
    /// # Errors
    ///
    /// When the mock cluster refuses.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> KafkaResult<()> {
        self.with_cluster(|c| c.create_topic(topic, partitions, 1))
    }

    /// Takes broker `id` down (connections are closed and refused).
    ///
    /// # Errors
    ///
    /// When the mock cluster refuses.
    pub fn broker_down(&self, id: i32) -> KafkaResult<()> {
        self.with_cluster(|c| c.broker_down(id))
    }

    /// Brings broker `id` back up.
    ///
    /// # Errors
    ///
    /// When the mock cluster refuses.
    pub fn broker_up(&self, id: i32) -> KafkaResult<()> {
        self.with_cluster(|c| c.broker_up(id))
    }
}
