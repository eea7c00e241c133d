import Foundation
import Hummingbird
import Prometheus
import WhyCache

/// The service's routes: reads from the shared-state file (no I/O: a
/// lookup in shared memory), writes through the log, and the metrics.
struct FlagRoutes: Sendable {
    let cache: SharedCache
    let updater: BackgroundUpdater
    let registry: PrometheusCollectorRegistry

    /// Flag names become keys under this prefix.
    static let keyPrefix = "flag/"

    /// The largest flag value the admin routes take.
    static let maximumValueBytes = 64 << 10

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("flags/:name", use: read)
        router.put("admin/flags/:name", use: write)
        router.delete("admin/flags/:name", use: delete)
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return router
    }

    /// `GET /flags/NAME[?after=ID]`.
    @Sendable func read(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let key = try Self.key(context)
        if let after = request.uri.queryParameters.get("after", as: UInt64.self) {
            // Another process wrote update `after`: wait until this machine applied it.
            do {
                try await updater.waitUntilApplied(through: after)
            } catch {
                throw HTTPError(.serviceUnavailable, message: error.description)
            }
        }
        guard let value = try await Self.answering({ () async throws(CacheError) in try cache.value(forKey: key) }) else {
            throw HTTPError(.notFound, message: "no flag \(try context.parameters.require("name"))")
        }
        return Self.text(String(decoding: value, as: UTF8.self))
    }

    /// `PUT /admin/flags/NAME` with the value as the body.
    @Sendable func write(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let key = try Self.key(context)
        let body = try await request.body.collect(upTo: Self.maximumValueBytes)
        let id = try await Self.answering { () async throws(CacheError) in try await cache.set(Array(buffer: body), forKey: key) }
        return Self.text("\(id)")
    }

    /// `DELETE /admin/flags/NAME`.
    @Sendable func delete(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let key = try Self.key(context)
        let id = try await Self.answering { () async throws(CacheError) in try await cache.delete(key) }
        return Self.text("\(id)")
    }

    /// The key of the flag the route names.
    static func key(_ context: BasicRequestContext) throws -> [UInt8] {
        Array((keyPrefix + (try context.parameters.require("name"))).utf8)
    }

    static func text(_ string: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: string + "\n")))
    }

    /// Runs a cache call and turns its typed errors into HTTP answers: a
    /// request that is wrong (a name too long for a key) is the client's;
    /// everything else (the log unreachable, the state file failing) is ours.
    static func answering<T>(_ body: () async throws(CacheError) -> T) async throws(HTTPError) -> T {
        do {
            return try await body()
        } catch {
            throw httpError(error)
        }
    }

    static func httpError(_ error: CacheError) -> HTTPError {
        switch error {
        case .invalidKey, .valueTooLong, .recordTooLarge:
            HTTPError(.badRequest, message: error.description)
        default:
            HTTPError(.serviceUnavailable, message: error.description)
        }
    }
}
