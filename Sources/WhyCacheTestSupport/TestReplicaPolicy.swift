import WhyCacheMySQL

extension MySQLReplicaConfiguration {
    /// Replicas at `host`:`ports` with the short times the replica tests use:
    /// a replica lagging more than 1 s (measured every 0.2 s) is left, and
    /// tried again after 0.2 s (at most 2 s after repeated failures); a
    /// replica that does not answer within 1 s is left.
    public static func testPolicy(host: String, ports: [Int]) -> MySQLReplicaConfiguration {
        var replicas = MySQLReplicaConfiguration(endpoints: ports.map { .tcp(host: host, port: $0) })
        replicas.maximumLag = .seconds(1)
        replicas.lagCheckInterval = .milliseconds(200)
        replicas.timeout = .seconds(1)
        replicas.retryDelay = .milliseconds(200)
        replicas.maximumRetryDelay = .seconds(2)
        return replicas
    }
}
