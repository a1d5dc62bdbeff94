/// The parts of a wasm module binary that debug information needs: where
/// the code section's contents start (DWARF addresses are offsets from
/// there), the custom sections by name, the `build_id` and
/// `external_debug_info` sections. Every length is checked against the
/// binary; a binary that is not wasm is an error naming the byte.
public struct WasmSections: Sendable {
    /// The module offset of the code section's first content byte (its
    /// function count), or nil for a module without code.
    public var codeStart: Int?
    /// Custom sections by name: the range of each one's contents in the
    /// binary (the first of a name wins).
    public var custom: [String: Range<Int>]
    /// The `build_id` custom section's bytes (tool-conventions BuildId.md).
    public var buildID: [UInt8]?
    /// The `external_debug_info` custom section: the path or URL of a
    /// separate file holding the debug sections.
    public var externalDebugInfo: String?

    public init(parsing bytes: [UInt8]) throws(DWARFError) {
        var cursor = DWARFCursor(bytes[...], section: "module")
        guard bytes.count >= 8, bytes[0..<4].elementsEqual([0, 0x61, 0x73, 0x6d]) else {
            throw cursor.error("the wasm magic \\0asm", at: 0)
        }
        try cursor.skip(8, "the header")
        codeStart = nil
        custom = [:]
        buildID = nil
        externalDebugInfo = nil
        while !cursor.isAtEnd {
            let id = try cursor.u8("a section id")
            let size = try cursor.uleb("a section size")
            let start = cursor.offset
            var contents = try cursor.sub(size, "the section")
            switch id {
            case 0:
                let length = try contents.uleb("a custom section's name length")
                let nameStart = contents.offset
                try contents.skip(length, "a custom section's name")
                let name = String(decoding: bytes[nameStart..<(nameStart + Int(length))], as: UTF8.self)
                let range = contents.offset..<(start + Int(size))
                if custom[name] == nil { custom[name] = range }
                if name == "build_id", buildID == nil {
                    var reader = contents
                    let count = try reader.uleb("the build id's length")
                    var idBytes = try reader.sub(count, "the build id")
                    var value: [UInt8] = []
                    while !idBytes.isAtEnd { value.append(try idBytes.u8("a build id byte")) }
                    buildID = value
                }
                if name == "external_debug_info", externalDebugInfo == nil {
                    var reader = contents
                    let count = try reader.uleb("the external debug info path's length")
                    let pathStart = reader.offset
                    try reader.skip(count, "the external debug info path")
                    externalDebugInfo = String(decoding: bytes[pathStart..<(pathStart + Int(count))], as: UTF8.self)
                }
            case 10:
                codeStart = start
            default:
                break
            }
        }
    }
}
