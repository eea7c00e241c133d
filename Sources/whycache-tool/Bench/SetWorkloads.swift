import WhyCache

/// The `set` workloads that `bench mysql` and `bench coalesce` time: workload
/// W's keys and values through `SharedCache.set`, each key written once.
enum SetWorkloads {
    /// Sets keys `firstKey ..< firstKey + count` one after the other and
    /// returns the latency of each call, in microseconds.
    static func sequential(on cache: SharedCache, count: Int, firstKey: Int = 0) async throws -> Percentiles {
        var latencies: [Double] = []
        latencies.reserveCapacity(count)
        for index in 0..<count {
            let item = Workload.item(UInt32(firstKey + index), version: 1)
            let start = monotonicSeconds()
            try await cache.set(item.value, forKey: item.key)
            latencies.append((monotonicSeconds() - start) * 1e6)
        }
        return Percentiles(latencies)
    }

    /// `writers` tasks of one process, each setting `setsPerWriter` keys of
    /// its own (from `firstKey` on) on the one shared `cache`; returns the
    /// wall time of the whole run and the latency of every call.
    static func concurrent(
        on cache: SharedCache, writers: Int, setsPerWriter: Int, firstKey: Int = 0
    ) async throws -> (seconds: Double, latencies: Percentiles) {
        let start = monotonicSeconds()
        let latencies = try await withThrowingTaskGroup(of: Percentiles.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    try await sequential(on: cache, count: setsPerWriter, firstKey: firstKey + writer * setsPerWriter)
                }
            }
            return try await group.reduce(into: [Double]()) { $0 += $1.sorted }
        }
        return (monotonicSeconds() - start, Percentiles(latencies))
    }
}
