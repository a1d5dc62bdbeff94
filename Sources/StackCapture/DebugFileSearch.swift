#if canImport(Glibc)
import Glibc
#endif
import WasmDWARF
import WasmUnwind
import UnwindReports

/// Finds the DWARF of captured wasm modules, for source lines offline.
///
/// For each module, in this order: a debug file given by path that matches
/// it (`--debug-file`); the debug sections the capture carries; the file
/// its `external_debug_info` section names (as given when absolute, else
/// by its name in each debug directory, then beside the capture); in each
/// debug directory (`--debug-dir`), `BUILDID.debug`, `BUILDID.wasm` and
/// `.build-id/XX/REST.debug` (gdb's layout) for a module with a build id,
/// then every `.wasm` and `.debug` file there. A file matches a module
/// with a `build_id` section by the same build id, and a module without
/// one only if it is the module itself (the same SHA-256), as
/// `DebugFile.matches` says: a debug file is never applied to a module it
/// cannot be shown to belong to.
///
/// Files are read once per search, at most `maximumFileBytes` each and
/// `maximumDirectoryEntries` per directory.
public final class DebugFileSearch {
    /// Where a module's debug information was found.
    public struct Found {
        public var info: ModuleDebugInfo
        /// The file's path, or "the capture".
        public var source: String
    }

    public static let maximumFileBytes = 1 << 30
    public static let maximumDirectoryEntries = 10_000

    /// The files given by path, read.
    public let files: [(path: String, file: DebugFile)]
    public let directories: [String]
    private var read: [String: DebugFile?] = [:]
    private var listings: [String: [String]] = [:]
    private var fromGiven: [ModuleIdentity: Found?] = [:]
    private var carried: [[UInt8]: Found] = [:]
    private var searched: [SearchKey: Found?] = [:]
    /// The paths of given files that matched a module so far.
    public private(set) var usedFiles: Set<String> = []

    /// Reads the files given by path; one that cannot be read or is not a
    /// wasm binary is an error naming it.
    public init(files: [String], directories: [String]) throws(InputError) {
        self.files = try files.map { (path) throws(InputError) in
            let bytes = try InputBytes(path: path).all(limit: Self.maximumFileBytes)
            do {
                return (path, try DebugFile(bytes: bytes))
            } catch {
                throw InputError(name: path, description: "\(path) is not a wasm module or debug file: \(error)")
            }
        }
        self.directories = directories
    }

    /// Whether anything was given to search.
    public var isEmpty: Bool { files.isEmpty && directories.isEmpty }

    /// The debug information of `module`, or nil; `problem` says why a
    /// module that should have had some has none (its external debug file
    /// not found, nothing in the places given matched it).
    public func debugInfo(for module: CaptureFile.Module, captureDirectory: String?) -> (found: Found?, problem: String?) {
        guard let debug = module.debug else { return (nil, nil) }
        let identity = debug.identity
        if let given = given(identity) { return (given, nil) }
        if let sections = debug.sections {
            if let known = carried[sections] { return (known, nil) }
            if let info = try? ModuleDebugInfo(codeStart: Int(identity.codeStart), debugFile: sections), info.hasDebugInfo {
                let made = Found(info: info, source: "the capture")
                carried[sections] = made
                return (made, nil)
            }
        }
        let key = SearchKey(identity: identity, captureDirectory: captureDirectory)
        if let known = searched[key] { return (known, nil) }
        let result = search(identity, captureDirectory: captureDirectory)
        searched[key] = .some(result.found)
        return result
    }

    private struct SearchKey: Hashable {
        var identity: ModuleIdentity
        var captureDirectory: String?
    }

    /// The first file given by path that belongs to the module.
    private func given(_ identity: ModuleIdentity) -> Found? {
        if let known = fromGiven[identity] { return known }
        var result: Found?
        for (path, file) in files where file.matches(identity) {
            if let made = Self.make(file, path, identity) {
                usedFiles.insert(path)
                result = made
                break
            }
        }
        fromGiven[identity] = .some(result)
        return result
    }

    private static func make(_ file: DebugFile, _ source: String, _ identity: ModuleIdentity) -> Found? {
        guard file.hasDebugInfo, let info = try? file.debugInfo(for: identity) else { return nil }
        return Found(info: info, source: source)
    }

    /// The external debug file and the debug directories.
    private func search(_ identity: ModuleIdentity, captureDirectory: String?) -> (found: Found?, problem: String?) {
        var looked: [String] = []
        func first(_ paths: [String]) -> Found? {
            for path in paths {
                looked.append(path)
                if let file = load(path), file.matches(identity), let made = Self.make(file, path, identity) { return made }
            }
            return nil
        }
        if let external = identity.externalDebugInfo {
            let name = Self.lastComponent(external)
            var candidates = external.hasPrefix("/") ? [external] : []
            for directory in directories + (captureDirectory.map { [$0] } ?? []) {
                candidates.append(Self.join(directory, name))
                if !external.hasPrefix("/"), name != external { candidates.append(Self.join(directory, external)) }
            }
            if let made = first(candidates) { return (made, nil) }
            if directories.isEmpty && files.isEmpty {
                return (nil, "its external_debug_info \"\(external)\" was not found or does not match (looked at \(looked.joined(separator: ", ")))")
            }
        }
        guard !directories.isEmpty || !files.isEmpty else { return (nil, nil) }
        for directory in directories {
            if let buildID = identity.buildID, buildID.count >= 2 {
                let hex = ModuleIdentity.hex(buildID)
                let byID = [Self.join(directory, hex + ".debug"), Self.join(directory, hex + ".wasm"),
                            Self.join(directory, ".build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug")]
                if let made = first(byID.filter(Self.exists)) { return (made, nil) }
            }
            let listed = listing(directory).filter { $0.hasSuffix(".wasm") || $0.hasSuffix(".debug") }
            if let made = first(listed.map { Self.join(directory, $0) }) { return (made, nil) }
        }
        let places = (files.map(\.path) + directories).joined(separator: ", ")
        let hint = identity.buildID == nil ? "; it has no build_id section, so only the module itself matches" : ""
        return (nil, "no debug file for it (\(identity.description)) in \(places)\(hint)")
    }

    /// The file at `path` read as a wasm binary, or nil (not there, not
    /// wasm, too large): once per path.
    private func load(_ path: String) -> DebugFile? {
        if let known = read[path] { return known }
        var file: DebugFile?
        if let input = try? InputBytes(path: path), input.count <= Self.maximumFileBytes,
           input.starts(with: [0x00, 0x61, 0x73, 0x6D]), let bytes = try? input.all(limit: Self.maximumFileBytes) {
            file = try? DebugFile(bytes: bytes)
        }
        read[path] = .some(file)
        return file
    }

    /// The names in `directory`, sorted, at most `maximumDirectoryEntries`.
    private func listing(_ directory: String) -> [String] {
        if let known = listings[directory] { return known }
        var names: [String] = []
        if let handle = opendir(directory) {
            while names.count < Self.maximumDirectoryEntries, let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(handle)
        }
        names.sort()
        listings[directory] = names
        return names
    }

    static func exists(_ path: String) -> Bool { access(path, R_OK) == 0 }

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// The directory of a file's path ("." for a bare name).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

extension CapturedStack {
    /// Source lines for a capture's frames, and where they came from.
    public struct SourceLines {
        /// Each frame's source symbols, innermost inlined function first
        /// (empty for a frame without), or nil when no frame's module has
        /// debug information.
        public var symbols: [[SourceSymbol]]?
        /// A sentence per module whose debug information should have been
        /// found or read and was not.
        public var problems: [String]
        /// Per module: its identity and where its DWARF was found.
        public var modules: [ModuleDebugReport]
    }

    /// The source lines of `backtrace`'s frames from the DWARF `search`
    /// finds for the capture's modules.
    public func sourceLines(of backtrace: SymbolicatedBacktrace, search: DebugFileSearch, captureDirectory: String?) -> SourceLines {
        var infos: [ModuleDebugInfo?] = []
        var result = SourceLines(symbols: nil, problems: [], modules: [])
        for module in capture.modules {
            let (found, problem) = search.debugInfo(for: module, captureDirectory: captureDirectory)
            infos.append(found?.info)
            if let problem { result.problems.append("module \(module.name ?? "<unknown>"): \(problem)") }
            if let identity = module.debug?.identity {
                result.modules.append(ModuleDebugReport(
                    module: module.name, buildID: identity.buildID.map(ModuleIdentity.hex),
                    contentHash: ModuleIdentity.hex(identity.contentHash), externalDebugInfo: identity.externalDebugInfo,
                    debugSource: found?.source))
            }
        }
        guard infos.contains(where: { $0 != nil }) else { return result }
        result.symbols = backtrace.frames.map { frame -> [SourceSymbol] in
            let address = frame.frame.address.rawValue
            guard let offset = frame.symbol?.moduleOffset,
                  let position = capture.modules.firstIndex(where: { $0.codeRange.contains(address) }),
                  let info = infos[position] else { return [] }
            return info.symbols(atModuleOffset: offset)
        }
        for (module, info) in zip(capture.modules, infos) {
            if let diagnostic = info?.diagnostic {
                result.problems.append("module \(module.name ?? "<unknown>"): its debug information cannot be read: \(diagnostic)")
            }
        }
        return result
    }

    /// `sourceLines(of:search:captureDirectory:)`'s symbols and problems.
    public func sourceSymbols(of backtrace: SymbolicatedBacktrace, search: DebugFileSearch,
                              captureDirectory: String?) -> (symbols: [[SourceSymbol]]?, problems: [String]) {
        let lines = sourceLines(of: backtrace, search: search, captureDirectory: captureDirectory)
        return (lines.symbols, lines.problems)
    }
}
