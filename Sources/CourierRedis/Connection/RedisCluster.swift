/// A Redis Cluster: some of its nodes, from which the client learns the whole cluster.
///
/// The client asks the first node that answers for the slot map (`CLUSTER SLOTS`): which master
/// owns each of the 16,384 hash slots. Every command then goes to the master that owns its key's
/// slot, over a connection pool per node. A `MOVED` answer (a slot that moved, a replica promoted)
/// refreshes the map and sends the command to the new owner; `ASK` (a slot being migrated) sends it
/// once to the node named, after `ASKING`. When a master dies, its connections fail and the map is
/// asked for again until the cluster names the promoted replica. List and stream subscribers read
/// on a connection of their own to the node that owns their key; pub/sub uses any node (a Redis
/// Cluster passes `PUBLISH` to every node).
public struct RedisCluster: Sendable, Hashable {
    /// The nodes to ask for the slot map, in this order; never empty.
    public var seeds: [RedisEndpoint]

    public init(_ seeds: [RedisEndpoint]) {
        self.seeds = seeds.isEmpty ? [.node("127.0.0.1")] : seeds
    }
}
