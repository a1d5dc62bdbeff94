import CWasmTools
import Foundation
import Synchronization

/// The group commit: uploads that arrive while a batch is being made
/// durable wait and go together in the next one. A batch costs one
/// `syncfs` of the data directory's file system (every blob written
/// before it — data, inode and directory entry — reaches the disk) and
/// one transaction in the index, instead of three syncs per upload. No
/// upload waits for a timer: the first one in an idle store commits at
/// once; the batch grows only while the disk is busy.
final class GroupCommitter: Sendable {
    typealias Waiter = CheckedContinuation<EventStore.Ingested, any Error>

    struct State {
        var pending: [(event: PendingEvent, waiter: Waiter)] = []
        /// A task is committing batches until `pending` is empty.
        var draining = false
        var batches = 0
        var committed = 0
        var largest = 0
    }

    let state = Mutex(State())
    let index: any EventIndex
    /// A directory on the blobs' file system.
    let blobs: URL
    let maximumBatch: Int
    /// Blocking calls (`syncfs`) run here, off Swift's concurrency threads.
    let queue = DispatchQueue(label: "wasm-unwind.group-commit")

    init(index: any EventIndex, blobs: URL, maximumBatch: Int = 512) {
        self.index = index
        self.blobs = blobs
        self.maximumBatch = maximumBatch
    }

    /// Commits `event` with whatever else is pending; returns once its
    /// batch is durable.
    func commit(_ event: PendingEvent) async throws -> EventStore.Ingested {
        try await withCheckedThrowingContinuation { (waiter: Waiter) in
            let lead = state.withLock { state in
                state.pending.append((event, waiter))
                defer { state.draining = true }
                return !state.draining
            }
            if lead { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [(event: PendingEvent, waiter: Waiter)] in
                let batch = Array(state.pending.prefix(maximumBatch))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                try await syncBlobs()
                let results = try await index.commit(batch.map(\.event))
                // One answer per upload, or every waiter would not be resumed.
                guard results.count == batch.count else {
                    throw EventError("the index answered \(results.count) of a batch of \(batch.count)")
                }
                state.withLock { state in
                    state.batches += 1
                    state.committed += batch.count
                    state.largest = max(state.largest, batch.count)
                }
                for (entry, result) in zip(batch, results) { entry.waiter.resume(returning: result) }
            } catch {
                for entry in batch { entry.waiter.resume(throwing: error) }
            }
        }
    }

    /// Every blob written so far, durable: `syncfs` on their file system
    /// (its errors are the writeback's since Linux 5.8).
    private func syncBlobs() async throws {
        let path = blobs.path
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            queue.async {
                let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard descriptor >= 0 else {
                    return done.resume(throwing: EventError("cannot open \(path): \(String(cString: strerror(errno)))"))
                }
                defer { close(descriptor) }
                guard wu_syncfs(descriptor) == 0 else {
                    return done.resume(throwing: EventError("cannot sync the uploads: \(String(cString: strerror(errno)))"))
                }
                done.resume()
            }
        }
    }

    /// Batches committed, events in them, the largest batch.
    var statistics: (batches: Int, events: Int, largest: Int) {
        state.withLock { ($0.batches, $0.committed, $0.largest) }
    }
}
