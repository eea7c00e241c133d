/// An asynchronous sequence that reads its elements from a datastore one
/// bounded page at a time, so that a reader of any amount of data holds only
/// one page in memory.
///
/// Each iterator starts over from the sequence's start position and asks
/// `fetch` for the page at its current position; `fetch` returns the page and
/// the position after it, or `nil` once nothing follows. An empty page also
/// ends the sequence.
public struct DatastorePagedSequence<Element: Sendable, Position: Sendable>: AsyncSequence, Sendable {
    /// The error every page read may throw.
    public typealias Failure = DatastoreError

    /// Reads the page at a position: its elements and the next position, if any.
    public typealias Fetch = @Sendable (Position) async throws(DatastoreError) -> (elements: [Element], next: Position?)

    private let start: Position
    private let fetch: Fetch

    /// Creates a sequence that begins at `start` and reads pages with `fetch`.
    public init(start: Position, fetch: @escaping Fetch) {
        self.start = start
        self.fetch = fetch
    }

    /// Creates an iterator positioned at the start.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(position: start, fetch: fetch)
    }

    /// Hands out the elements of one page after the other.
    public struct AsyncIterator: AsyncIteratorProtocol {
        private var position: Position?
        private var page: [Element] = []
        private var index = 0
        private let fetch: Fetch

        init(position: Position, fetch: @escaping Fetch) {
            self.position = position
            self.fetch = fetch
        }

        /// The next element, reading the next page when the current one is used up.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(DatastoreError) -> Element? {
            while index == page.count {
                guard let current = position else { return nil }
                // Drop the used page before reading the next, to hold only one.
                page = []
                index = 0
                let result = try await fetch(current)
                page = result.elements
                position = result.elements.isEmpty ? nil : result.next
            }
            defer { index += 1 }
            return page[index]
        }

        /// The next element, reading the next page when the current one is used up.
        public mutating func next() async throws(DatastoreError) -> Element? {
            try await next(isolation: nil)
        }
    }
}

/// The records of a log range, in update id order.
public typealias LogEntrySequence = DatastorePagedSequence<LogEntry, UInt64>

/// The payloads of a checkpoint, in order.
public typealias CheckpointPayloadSequence = DatastorePagedSequence<[UInt8], CheckpointPosition>
