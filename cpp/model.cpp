// The model metadata (blur_classifier.json): a small JSON reader for the fields the
// estimator needs, and where the installed model lives.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "fastdefocus/estimator.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#include <sys/stat.h>
#endif

namespace fastdefocus {

namespace {

// ------------------------------------------------------------------ JSON

struct Json {
    enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
    bool boolean = false;
    double number = 0;
    std::string string;
    std::vector<Json> array;
    std::vector<std::pair<std::string, Json>> object;

    const Json* get(const std::string& key) const {
        if (kind != kObject) return nullptr;
        for (const auto& kv : object)
            if (kv.first == key) return &kv.second;
        return nullptr;
    }
};

class JsonParser {
  public:
    JsonParser(const std::string& text, const std::string& where) : s_(text), where_(where) {}

    Json parse() {
        Json v = value(0);
        skip();
        if (i_ != s_.size()) fail("unexpected text after the value");
        return v;
    }

  private:
    const std::string& s_;
    std::string where_;
    std::size_t i_ = 0;

    [[noreturn]] void fail(const std::string& what) const {
        throw ModelError("model metadata " + where_ + " is not valid JSON: " + what + " at byte " + std::to_string(i_));
    }
    void skip() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
    }
    bool literal(const char* word) {
        const std::size_t n = std::strlen(word);
        if (s_.compare(i_, n, word) != 0) return false;
        i_ += n;
        return true;
    }
    Json value(int depth) {
        if (depth > 64) fail("nesting too deep");
        skip();
        if (i_ >= s_.size()) fail("unexpected end");
        Json v;
        const char c = s_[i_];
        if (c == '{') {
            v.kind = Json::kObject;
            ++i_;
            skip();
            if (i_ < s_.size() && s_[i_] == '}') {
                ++i_;
                return v;
            }
            for (;;) {
                skip();
                if (i_ >= s_.size() || s_[i_] != '"') fail("expected a key");
                std::string key = string();
                skip();
                if (i_ >= s_.size() || s_[i_] != ':') fail("expected ':'");
                ++i_;
                v.object.emplace_back(std::move(key), value(depth + 1));
                skip();
                if (i_ < s_.size() && s_[i_] == ',') {
                    ++i_;
                    continue;
                }
                if (i_ < s_.size() && s_[i_] == '}') {
                    ++i_;
                    return v;
                }
                fail("expected ',' or '}'");
            }
        }
        if (c == '[') {
            v.kind = Json::kArray;
            ++i_;
            skip();
            if (i_ < s_.size() && s_[i_] == ']') {
                ++i_;
                return v;
            }
            for (;;) {
                v.array.push_back(value(depth + 1));
                skip();
                if (i_ < s_.size() && s_[i_] == ',') {
                    ++i_;
                    continue;
                }
                if (i_ < s_.size() && s_[i_] == ']') {
                    ++i_;
                    return v;
                }
                fail("expected ',' or ']'");
            }
        }
        if (c == '"') {
            v.kind = Json::kString;
            v.string = string();
            return v;
        }
        if (literal("true")) {
            v.kind = Json::kBool;
            v.boolean = true;
            return v;
        }
        if (literal("false")) {
            v.kind = Json::kBool;
            return v;
        }
        if (literal("null")) return v;
        if (literal("NaN")) {  // Python's json writes these
            v.kind = Json::kNumber;
            v.number = std::nan("");
            return v;
        }
        if (literal("Infinity")) {
            v.kind = Json::kNumber;
            v.number = HUGE_VAL;
            return v;
        }
        if (literal("-Infinity")) {
            v.kind = Json::kNumber;
            v.number = -HUGE_VAL;
            return v;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            const std::size_t start = i_;
            while (i_ < s_.size() && std::strchr("+-0123456789.eE", s_[i_]) != nullptr) ++i_;
            const std::string token = s_.substr(start, i_ - start);
            // strtod in the "C" locale reads the shortest repr Python writes exactly
            std::istringstream in(token);
            in.imbue(std::locale::classic());
            double d = 0;
            in >> d;
            if (in.fail() || !in.eof()) fail("bad number '" + token + "'");
            v.kind = Json::kNumber;
            v.number = d;
            return v;
        }
        fail(std::string("unexpected character '") + c + "'");
    }
    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    unsigned hex4() {
        if (i_ + 4 > s_.size()) fail("bad \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            const char h = s_[i_++];
            v <<= 4;
            if (h >= '0' && h <= '9') v |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f') v |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') v |= static_cast<unsigned>(h - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }
    std::string string() {
        ++i_;  // opening quote
        std::string out;
        while (i_ < s_.size()) {
            const char c = s_[i_++];
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) break;
            const char e = s_[i_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
                        i_ += 2;
                        const unsigned lo = hex4();
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    put_utf8(out, cp);
                    break;
                }
                default: fail("bad escape");
            }
        }
        fail("unterminated string");
    }
};

bool file_exists(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return static_cast<bool>(f);
}

std::string join(const std::string& dir, const std::string& name) {
    if (dir.empty()) return name;
    const char last = dir.back();
    return (last == '/' || last == '\\') ? dir + name : dir + "/" + name;
}

const char* const kMetadataName = "blur_classifier.json";
const char* const kOpenCvOnnxName = "blur_classifier_opencv.onnx";

const Json& require(const Json& parent, const char* key, Json::Kind kind, const std::string& where,
                    const char* path) {
    const Json* v = parent.get(key);
    if (v == nullptr || v->kind != kind)
        throw ModelError("model metadata " + where + " lacks " + path +
                         (v == nullptr ? "" : " of the right type") + ": not a fastdefocus model file");
    return *v;
}

double finite_number(const Json& v, const std::string& where, const char* what) {
    if (v.kind != Json::kNumber || !std::isfinite(v.number))
        throw ModelError("model metadata " + where + ": " + what + " must be a finite number");
    return v.number;
}

}  // namespace

ModelInfo load_model_info(const std::string& directory) {
    const std::string path = join(directory, kMetadataName);
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw ModelError("model metadata not found: " + path +
                         " (set EstimatorOptions::model_path or FASTDEFOCUS_MODEL_DIR to the model folder)");
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    const Json root = JsonParser(text, path).parse();
    if (root.kind != Json::kObject) throw ModelError("model metadata " + path + " is not a JSON object");

    ModelInfo info;
    info.directory = directory;
    for (const Json& v : require(root, "levels", Json::kArray, path, "levels").array)
        info.levels.push_back(finite_number(v, path, "levels[i]"));
    if (info.levels.size() < 2) throw ModelError("model metadata " + path + ": needs at least 2 levels");
    const Json& input = require(root, "input", Json::kObject, path, "input");
    const double patch = finite_number(require(input, "patch_size", Json::kNumber, path, "input.patch_size"), path,
                                       "input.patch_size");
    if (patch < 1 || patch > 4096 || patch != std::floor(patch))
        throw ModelError("model metadata " + path + ": input.patch_size must be an integer in [1, 4096]");
    info.patch_size = static_cast<int>(patch);
    info.std_floor = finite_number(require(input, "std_floor", Json::kNumber, path, "input.std_floor"), path,
                                   "input.std_floor");
    if (!(info.std_floor > 0)) throw ModelError("model metadata " + path + ": input.std_floor must be > 0");
    const Json& calibration = require(root, "calibration", Json::kObject, path, "calibration");
    for (const Json& knot : require(calibration, "knots", Json::kArray, path, "calibration.knots").array) {
        if (knot.kind != Json::kArray || knot.array.size() != 2)
            throw ModelError("model metadata " + path + ": calibration.knots must be pairs [raw, sigma]");
        info.calibration.push_back({finite_number(knot.array[0], path, "calibration knot"),
                                    finite_number(knot.array[1], path, "calibration knot")});
    }
    if (info.calibration.empty()) throw ModelError("model metadata " + path + ": calibration.knots is empty");
    for (std::size_t i = 1; i < info.calibration.size(); ++i)
        if (!(info.calibration[i][0] >= info.calibration[i - 1][0]))
            throw ModelError("model metadata " + path + ": calibration knots must have increasing raw values");
    if (const Json* data = root.get("data")) {
        if (const Json* flat = data->get("flat_std")) info.flat_std = finite_number(*flat, path, "data.flat_std");
    }
    const Json& files = require(root, "files", Json::kObject, path, "files");
    const Json& onnx = require(files, "onnx", Json::kObject, path, "files.onnx");
    info.onnx_path = join(directory, require(onnx, "name", Json::kString, path, "files.onnx.name").string);
    if (const Json* cv = files.get("onnx_opencv")) {
        if (const Json* name = cv->get("name"); name != nullptr && name->kind == Json::kString)
            info.opencv_onnx_path = join(directory, name->string);
    }
    if (info.opencv_onnx_path.empty()) {
        const std::string candidate = join(directory, kOpenCvOnnxName);
        info.opencv_onnx_path = file_exists(candidate) ? candidate : info.onnx_path;
    }
    return info;
}

namespace {

std::string library_dir() {
#if defined(__unix__) || defined(__APPLE__)
    Dl_info dl{};
    if (dladdr(reinterpret_cast<void*>(&load_model_info), &dl) != 0 && dl.dli_fname != nullptr) {
        std::string p = dl.dli_fname;
        const std::size_t slash = p.find_last_of('/');
        if (slash != std::string::npos) return p.substr(0, slash);
    }
#endif
    return {};
}

}  // namespace

std::string default_model_dir(const std::string& package_hint) {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("FASTDEFOCUS_MODEL_DIR"); env != nullptr && *env != '\0')
        candidates.emplace_back(env);
    if (!package_hint.empty()) candidates.push_back(package_hint);
    const std::string lib = library_dir();
    if (!lib.empty()) candidates.push_back(lib + "/../share/fastdefocus");
#ifdef FASTDEFOCUS_INSTALL_MODEL_DIR
    candidates.emplace_back(FASTDEFOCUS_INSTALL_MODEL_DIR);
#endif
#ifdef FASTDEFOCUS_SOURCE_MODEL_DIR
    candidates.emplace_back(FASTDEFOCUS_SOURCE_MODEL_DIR);
#endif
    std::string looked;
    for (const std::string& dir : candidates) {
        if (file_exists(join(dir, kMetadataName))) return dir;
        looked += (looked.empty() ? "" : ", ") + dir;
    }
    throw ModelError("no fastdefocus model found (looked for " + std::string(kMetadataName) + " in: " +
                     (looked.empty() ? std::string("nowhere") : looked) +
                     "); set EstimatorOptions::model_path or FASTDEFOCUS_MODEL_DIR");
}

}  // namespace fastdefocus
