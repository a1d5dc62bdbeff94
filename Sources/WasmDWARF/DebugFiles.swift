/// Who a module is, as far as finding its debug information offline
/// needs: its `build_id` section (tool-conventions BuildId.md) when it has
/// one, else the SHA-256 of its bytes; where its code section's contents
/// start (DWARF addresses are relative to it); and its
/// `external_debug_info` section, naming a separate debug file.
public struct ModuleIdentity: Hashable, Sendable {
    /// The module offset of the code section's contents.
    public var codeStart: UInt32
    public var buildID: [UInt8]?
    /// SHA-256 of the module's bytes (32 bytes).
    public var contentHash: [UInt8]
    public var externalDebugInfo: String?

    public init(codeStart: UInt32, buildID: [UInt8]?, contentHash: [UInt8], externalDebugInfo: String?) {
        self.codeStart = codeStart
        self.buildID = buildID
        self.contentHash = contentHash
        self.externalDebugInfo = externalDebugInfo
    }

    /// The identity of the module `bytes`; nil for a module without code.
    public init?(module bytes: [UInt8], sections: WasmSections) {
        guard let codeStart = sections.codeStart, codeStart <= Int(UInt32.max) else { return nil }
        self.init(codeStart: UInt32(codeStart), buildID: sections.buildID, contentHash: ContentHash.sha256(bytes),
                  externalDebugInfo: sections.externalDebugInfo)
    }

    /// `build_id 8c3f…` or `sha256 1d0e…`: how messages name the module.
    public var description: String {
        if let buildID { return "build_id \(Self.hex(buildID))" }
        return "sha256 \(Self.hex(contentHash))"
    }

    /// Lowercase hex digits of `bytes`, as build ids are written.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A file that may hold a module's debug information: the module itself
/// (built with `-g`), or a separate debug file (a wasm binary with the
/// `.debug_*` custom sections, as `-gseparate-dwarf` writes, or the module
/// before `wasm-tools strip`).
public struct DebugFile: Sendable {
    public let bytes: [UInt8]
    public let sections: WasmSections
    /// SHA-256 of the file's bytes.
    public let contentHash: [UInt8]

    /// Reads `bytes` as a wasm binary; an error names the byte where it is
    /// not one.
    public init(bytes: [UInt8]) throws(DWARFError) {
        self.bytes = bytes
        sections = try WasmSections(parsing: bytes)
        contentHash = ContentHash.sha256(bytes)
    }

    /// Whether the file has a `.debug_info` section.
    public var hasDebugInfo: Bool { sections.custom[".debug_info"] != nil }

    /// Whether this is the debug information of `module`: the same
    /// `build_id` when the module has one, else the module's own bytes.
    /// A debug file of a module without a `build_id` cannot be told from
    /// another module's, so it matches nothing but the module itself.
    public func matches(_ module: ModuleIdentity) -> Bool {
        if let buildID = module.buildID { return sections.buildID == buildID }
        return contentHash == module.contentHash
    }

    /// Why the file does not match `module`, for a message.
    public func mismatch(_ module: ModuleIdentity) -> String {
        if module.buildID != nil {
            return sections.buildID.map { "its build_id is \(ModuleIdentity.hex($0))" } ?? "it has no build_id section"
        }
        return "the module has no build_id, and the file is not the module itself (sha256 \(ModuleIdentity.hex(contentHash)))"
    }

    /// The debug information for `module`.
    public func debugInfo(for module: ModuleIdentity) throws(DWARFError) -> ModuleDebugInfo {
        try ModuleDebugInfo(codeStart: Int(module.codeStart), debugFile: bytes)
    }

    /// A wasm binary of only the `.debug_*` custom sections of `bytes`:
    /// what a capture carries of a module's DWARF.
    public static func debugSections(of bytes: [UInt8], _ sections: WasmSections) -> [UInt8] {
        var out: [UInt8] = [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00]
        for (name, range) in sections.custom.sorted(by: { $0.value.lowerBound < $1.value.lowerBound })
            where name.hasPrefix(".debug_") {
            let nameBytes = Array(name.utf8)
            var body = leb(UInt64(nameBytes.count)) + nameBytes
            body += bytes[range]
            out.append(0)
            out += leb(UInt64(body.count))
            out += body
        }
        return out
    }

    static func leb(_ value: UInt64) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            out.append(byte)
        } while value != 0
        return out
    }
}
