// A PostgreSQL server of its own for the fleet tests and the benchmarks:
// Debian's binaries (make tools installs them), a cluster made by initdb in
// a temporary directory, listening on 127.0.0.1 on a free port, stopped
// and removed at the end. Run as the `postgres` user when this is root
// (initdb refuses root).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class PostgresScratch: @unchecked Sendable {
    /// The directory of PostgreSQL's programs: the newest
    /// /usr/lib/postgresql/VERSION/bin with initdb and postgres.
    public static var binaries: URL? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        return versions.map { URL(fileURLWithPath: "\(root)/\($0)/bin") }.first { bin in
            FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("initdb").path)
                && FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("postgres").path)
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let directory: URL
    public let port: Int
    public let user = "wasmunwind"
    let server: Process
    let log: URL

    /// `postgres://wasmunwind@127.0.0.1:PORT/DATABASE`.
    public func url(database: String = "postgres") -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    /// Makes a cluster and starts it; returns once it takes connections.
    public init() throws {
        guard let bin = Self.binaries else {
            throw Failure(description: "no PostgreSQL server under /usr/lib/postgresql (make tools installs Debian's postgresql)")
        }
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("wasm-unwind-postgres-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        log = directory.appendingPathComponent("server.log")
        // As root, the cluster belongs to `postgres`.
        var prefix: [String] = []
        if getuid() == 0 {
            guard let account = getpwnam("postgres") else {
                throw Failure(description: "running as root and there is no postgres user to run the server as")
            }
            guard chown(directory.path, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                throw Failure(description: "cannot give \(directory.path) to postgres: \(String(cString: strerror(errno)))")
            }
            prefix = ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        }
        let data = directory.appendingPathComponent("data").path
        let initdb = try Self.run(prefix + [bin.appendingPathComponent("initdb").path, "-D", data, "-U", user, "-A", "trust",
                                            "-E", "UTF8", "--no-sync", "--no-instructions"])
        guard initdb.status == 0 else { throw Failure(description: "initdb failed: \(initdb.output)") }
        port = try Self.freePort()
        server = Process()
        server.executableURL = URL(fileURLWithPath: prefix.first ?? bin.appendingPathComponent("postgres").path)
        server.arguments = Array(prefix.dropFirst()) + (prefix.isEmpty ? [] : [bin.appendingPathComponent("postgres").path])
            + ["-D", data, "-k", directory.path, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100"]
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        server.standardOutput = output
        server.standardError = output
        try server.run()
        // Ready when pg_isready says so: the port accepts connections before
        // the server takes them ("the database system is starting up").
        let deadline = Date().addingTimeInterval(30)
        let isReady = bin.appendingPathComponent("pg_isready").path
        while !Self.accepts(port) || (try? Self.run([isReady, "-q", "-h", "127.0.0.1", "-p", String(port)]).status) != 0 {
            guard server.isRunning, Date() < deadline else {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                stop()
                throw Failure(description: "PostgreSQL did not start on port \(port): \(text)")
            }
            usleep(50_000)
        }
    }

    /// Stops the server (fast shutdown) and removes its directory.
    public func stop() {
        if server.isRunning {
            server.interrupt()
            server.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// A port nothing listens on now.
    public static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw Failure(description: "no free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts connections on 127.0.0.1:port.
    static func accepts(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
