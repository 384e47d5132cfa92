// OneFlow variable directories: see VarDir.h and specs/oneflow-vardir.md.
#include "serialization/oneflow/VarDir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <variant>

#include "framework/core/Log.h"
#include "serialization/FileIo.h"

namespace anvil::oneflow {
namespace fs = std::filesystem;

namespace {

constexpr std::array<std::string_view, 22> kTypeNames = {
    "kInvalidDataType", "kChar",    "kFloat",   "kDouble",   "kInt8",      "kInt32",     "kInt64",    "kUInt8",
    "kOFRecord",        "kFloat16", "kTensorBuffer", "kBFloat16", "kBool",  "kUInt16",    "kUInt32",   "kUInt64",
    "kUInt128",         "kInt16",   "kInt128",  "kComplex32", "kComplex64", "kComplex128"};

std::string dtype_label(int v) {
  auto n = data_type_name(v);
  return n.empty() ? fmt::format("DataType {}", v) : std::string(n);
}

bool is_regular(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_whole(const std::string& path) {
  ReadOnlyFile f(path);
  std::string s(static_cast<std::size_t>(f.size()), '\0');
  if (!s.empty()) f.read_exact(0, s.data(), s.size());
  return s;
}

std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

std::int64_t numel_of(const std::vector<std::int64_t>& dims) {
  std::int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

// ---------------------------------------------------------------- meta tokenizer
struct MetaLexer {
  std::string_view s;
  std::size_t i = 0;
  const std::string& path;
  void skip() {
    while (i < s.size()) {
      char c = s[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ';' || c == '\f' || c == '\v') {
        ++i;
      } else if (c == '#') {
        while (i < s.size() && s[i] != '\n') ++i;
      } else {
        break;
      }
    }
  }
  bool at_end() { skip(); return i >= s.size(); }
  char peek() { skip(); return i < s.size() ? s[i] : '\0'; }
  [[noreturn]] void fail(const std::string& what) {
    throw Error(fmt::format("OneFlow meta '{}': {} at offset {}", path, what, i));
  }
  std::string ident() {
    skip();
    std::size_t b = i;
    while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
    if (b == i) fail("expected a field name");
    return std::string(s.substr(b, i - b));
  }
  bool accept(char c) {
    if (peek() == c) { ++i; return true; }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) fail(fmt::format("expected '{}'", c));
  }
  std::int64_t integer() {
    skip();
    std::size_t b = i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    std::string t(s.substr(b, i - b));
    if (t.empty() || t == "-" || t == "+") fail("expected an integer");
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(t.c_str(), &end, 10);
    if (errno == ERANGE) fail(fmt::format("integer {} out of range", t));
    return v;
  }
};

}  // namespace

std::string_view data_type_name(int v) {
  if (v < 0 || v >= static_cast<int>(kTypeNames.size())) return {};
  return kTypeNames[static_cast<std::size_t>(v)];
}

std::optional<int> data_type_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kTypeNames.size(); ++i)
    if (kTypeNames[i] == name) return static_cast<int>(i);
  return std::nullopt;
}

std::optional<DType> dtype_from_data_type(int v) {
  switch (v) {
    case 1: return DType::kI8;
    case 2: return DType::kF32;
    case 3: return DType::kF64;
    case 4: return DType::kI8;
    case 5: return DType::kI32;
    case 6: return DType::kI64;
    case 7: return DType::kU8;
    case 9: return DType::kF16;
    case 11: return DType::kBF16;
    case 12: return DType::kBool;
    case 17: return DType::kI16;
    default: return std::nullopt;
  }
}

int data_type_for(DType dtype, bool allow_extended, std::string_view what) {
  switch (dtype) {
    case DType::kF32: return 2;
    case DType::kF64: return 3;
    case DType::kI8: return 4;
    case DType::kI32: return 5;
    case DType::kI64: return 6;
    case DType::kU8: return 7;
    case DType::kF16: return 9;
    case DType::kBool: if (allow_extended) return 12; break;
    case DType::kI16: if (allow_extended) return 17; break;
    case DType::kBF16: if (allow_extended) return 11; break;
    default: break;
  }
  throw Error(fmt::format("OneFlow variable \"{}\": dtype {} cannot be written{}", what, dtype_name(dtype),
                          (dtype == DType::kBool || dtype == DType::kI16 || dtype == DType::kBF16)
                              ? " unless extended dtypes are allowed (OneFlow <= 0.3 cannot read it)"
                              : ""));
}

std::string shape_str(const std::vector<std::int64_t>& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  if (dims.size() == 1) s += ",";
  return s + ")";
}

VarMeta parse_meta(std::string_view text, const std::string& path) {
  MetaLexer lx{text, 0, path};
  VarMeta m;
  bool have_shape = false, have_type = false;
  while (!lx.at_end()) {
    std::string f = lx.ident();
    if (f == "shape") {
      if (have_shape) lx.fail("repeated field 'shape'");
      have_shape = true;
      lx.accept(':');
      char close;
      if (lx.accept('{')) close = '}';
      else if (lx.accept('<')) close = '>';
      else lx.fail("expected '{' or '<' after 'shape'");
      while (!lx.accept(close)) {
        if (lx.at_end()) lx.fail("unterminated 'shape'");
        std::string g = lx.ident();
        if (g != "dim") lx.fail(fmt::format("unknown field '{}' in shape", g));
        lx.expect(':');
        auto push = [&](std::int64_t d) {
          if (d < 0) lx.fail(fmt::format("negative dim {}", d));
          m.shape.push_back(d);
        };
        if (lx.accept('[')) {
          while (!lx.accept(']')) {
            if (lx.at_end()) lx.fail("unterminated dim list");
            push(lx.integer());
          }
        } else {
          push(lx.integer());
        }
      }
    } else if (f == "data_type") {
      if (have_type) lx.fail("repeated field 'data_type'");
      have_type = true;
      lx.expect(':');
      char c = lx.peek();
      if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+') {
        std::int64_t v = lx.integer();
        if (v < 0 || v > 1000000) lx.fail(fmt::format("invalid data_type {}", v));
        m.data_type = static_cast<int>(v);
      } else {
        std::string n = lx.ident();
        auto v = data_type_from_name(n);
        if (!v) lx.fail(fmt::format("unknown data_type enum name '{}'", n));
        m.data_type = *v;
      }
    } else {
      lx.fail(fmt::format("unknown field '{}'", f));
    }
  }
  if (!have_type) throw Error(fmt::format("OneFlow meta '{}': missing data_type", path));
  return m;
}

std::string format_meta(const std::vector<std::int64_t>& shape, int data_type) {
  std::string s = "shape {\n";
  for (auto d : shape) s += fmt::format("  dim: {}\n", d);
  s += "}\ndata_type: ";
  s += dtype_label(data_type);
  s += "\n";
  return s;
}

// ---------------------------------------------------------------- restricted pickle reader

namespace {

struct PValue;
using PPtr = std::shared_ptr<PValue>;
struct PValue {
  enum Kind { kMark, kStr, kInt, kDict, kTuple, kGlobal, kTensor } kind;
  std::string str;                             // kStr; kGlobal: "module.name"; kTensor: path
  std::int64_t i = 0;                          // kInt
  std::vector<std::pair<PPtr, PPtr>> items;    // kDict
  bool ordered = false;                        // kDict created by OrderedDict()
  std::vector<PPtr> elems;                     // kTuple
  bool tensor_built = false;                   // kTensor
};

class PickleReader {
 public:
  PickleReader(const std::string& b, const std::string& path) : b_(b), path_(path) {}
  // A pickle may make a dict hold itself (memo + SETITEM): break every link so no cycle leaks.
  ~PickleReader() {
    for (auto& p : all_) {
      p->items.clear();
      p->elems.clear();
    }
  }
  PickleReader(const PickleReader&) = delete;
  PickleReader& operator=(const PickleReader&) = delete;

  PPtr run() {
    while (true) {
      std::size_t at = pos_;
      unsigned char op = u8();
      switch (op) {
        case 0x80: u8(); break;                       // PROTO
        case 0x95: take(8); break;                    // FRAME
        case '.':                                     // STOP
          if (stack_.size() != 1) fail(at, "STOP with a stack that does not hold one object");
          return stack_.back();
        case '(': stack_.push_back(make(PValue::kMark)); break;
        case '}': stack_.push_back(make(PValue::kDict)); break;
        case ')': stack_.push_back(make(PValue::kTuple)); break;
        case 's': {
          PPtr v = pop(at), k = pop(at);
          PPtr d = top(at);
          if (d->kind != PValue::kDict) fail(at, "SETITEM on a non-dict");
          d->items.emplace_back(k, v);
          break;
        }
        case 'u': {
          auto xs = pop_mark(at);
          if (xs.size() % 2) fail(at, "SETITEMS with an odd number of items");
          PPtr d = top(at);
          if (d->kind != PValue::kDict) fail(at, "SETITEMS on a non-dict");
          for (std::size_t j = 0; j < xs.size(); j += 2) d->items.emplace_back(xs[j], xs[j + 1]);
          break;
        }
        case 'b': {                                   // BUILD
          PPtr state = pop(at);
          PPtr obj = top(at);
          if (obj->kind == PValue::kTensor) {
            if (obj->tensor_built) fail(at, "BUILD applied twice to a tensor");
            if (state->kind != PValue::kDict || state->items.size() != 1 ||
                state->items[0].first->kind != PValue::kStr || state->items[0].first->str != "path" ||
                state->items[0].second->kind != PValue::kStr)
              fail(at, "tensor state is not {'path': 'tensor_N'}");
            obj->str = state->items[0].second->str;
            obj->tensor_built = true;
          } else if (obj->kind == PValue::kDict && obj->ordered) {
            // OrderedDict state ({'_metadata': ...}): ignored.
            if (state->kind != PValue::kDict) fail(at, "OrderedDict state is not a dict");
          } else {
            fail(at, "BUILD on an object that is neither a tensor nor an OrderedDict");
          }
          break;
        }
        case 0x81: {                                  // NEWOBJ
          PPtr args = pop(at), cls = pop(at);
          if (cls->kind != PValue::kGlobal) fail(at, "NEWOBJ of a non-class");
          if (args->kind != PValue::kTuple || !args->elems.empty()) fail(at, "NEWOBJ with arguments");
          stack_.push_back(instantiate(cls, at));
          break;
        }
        case 'R': {                                   // REDUCE
          PPtr args = pop(at), cls = pop(at);
          if (cls->kind != PValue::kGlobal) fail(at, "REDUCE of a non-callable");
          if (args->kind != PValue::kTuple || !args->elems.empty())
            fail(at, fmt::format("{} called with arguments", cls->str));
          stack_.push_back(instantiate(cls, at));
          break;
        }
        case 'c': {                                   // GLOBAL
          std::string mod = line(at), name = line(at);
          stack_.push_back(global(mod, name, at));
          break;
        }
        case 0x93: {                                  // STACK_GLOBAL
          PPtr name = pop(at), mod = pop(at);
          if (name->kind != PValue::kStr || mod->kind != PValue::kStr) fail(at, "STACK_GLOBAL of non-strings");
          stack_.push_back(global(mod->str, name->str, at));
          break;
        }
        case 0x94: memo_[memo_.size()] = top(at); break;          // MEMOIZE
        case 'q': memo_[u8()] = top(at); break;                   // BINPUT
        case 'r': memo_[u32()] = top(at); break;                  // LONG_BINPUT
        case 'h': stack_.push_back(get(u8(), at)); break;         // BINGET
        case 'j': stack_.push_back(get(u32(), at)); break;        // LONG_BINGET
        case 0x8c: { auto n = u8(); auto p = make(PValue::kStr); p->str = take(n); stack_.push_back(p); break; }
        case 'X': { auto n = u32(); auto p = make(PValue::kStr); p->str = take(n); stack_.push_back(p); break; }
        case 'K': { auto p = make(PValue::kInt); p->i = u8(); stack_.push_back(p); break; }
        case 'M': { auto p = make(PValue::kInt); p->i = u8(); p->i |= std::int64_t(u8()) << 8; stack_.push_back(p); break; }
        case 'J': { auto p = make(PValue::kInt); p->i = static_cast<std::int32_t>(u32()); stack_.push_back(p); break; }
        default:
          fail(at, fmt::format("unsupported pickle opcode 0x{:02x}{}", op,
                               std::isprint(op) ? fmt::format(" ('{}')", static_cast<char>(op)) : ""));
      }
    }
  }

  [[noreturn]] void fail(std::size_t at, const std::string& what) const {
    throw Error(fmt::format("pickled_data '{}': {} (offset {}); only a name->tensor state dict is supported",
                            path_, what, at));
  }

 private:
  PPtr make(PValue::Kind k) {
    auto p = std::make_shared<PValue>();
    p->kind = k;
    all_.push_back(p);
    return p;
  }
  PPtr global(const std::string& mod, const std::string& name, std::size_t at) {
    std::string full = fmt::format("{}.{}", mod, name);
    if (full != "collections.OrderedDict" && full != "oneflow.nn.Parameter" &&
        full != "oneflow._oneflow_internal.Tensor")
      fail(at, fmt::format("pickled object {} is not a name\u2192tensor mapping", full));
    auto p = make(PValue::kGlobal);
    p->str = full;
    return p;
  }
  PPtr instantiate(const PPtr& cls, std::size_t) {
    if (cls->str == "collections.OrderedDict") {
      auto d = make(PValue::kDict);
      d->ordered = true;
      return d;
    }
    return make(PValue::kTensor);
  }
  PPtr get(std::uint32_t k, std::size_t at) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail(at, fmt::format("memo key {} not set", k));
    return it->second;
  }
  PPtr pop(std::size_t at) {
    if (stack_.empty() || stack_.back()->kind == PValue::kMark) fail(at, "stack underflow");
    PPtr p = stack_.back();
    stack_.pop_back();
    return p;
  }
  PPtr top(std::size_t at) {
    if (stack_.empty() || stack_.back()->kind == PValue::kMark) fail(at, "stack underflow");
    return stack_.back();
  }
  std::vector<PPtr> pop_mark(std::size_t at) {
    std::vector<PPtr> xs;
    while (true) {
      if (stack_.empty()) fail(at, "no MARK on the stack");
      PPtr p = stack_.back();
      stack_.pop_back();
      if (p->kind == PValue::kMark) break;
      xs.push_back(p);
    }
    std::reverse(xs.begin(), xs.end());
    return xs;
  }
  unsigned char u8() {
    if (pos_ >= b_.size()) fail(pos_, "truncated pickle");
    return static_cast<unsigned char>(b_[pos_++]);
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v |= std::uint32_t(u8()) << (8 * k);
    return v;
  }
  std::string take(std::size_t n) {
    if (n > b_.size() - pos_) fail(pos_, "truncated pickle");
    std::string s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string line(std::size_t at) {
    auto e = b_.find('\n', pos_);
    if (e == std::string::npos) fail(at, "unterminated GLOBAL");
    std::string s = b_.substr(pos_, e - pos_);
    pos_ = e + 1;
    return s;
  }

  const std::string& b_;
  const std::string& path_;
  std::size_t pos_ = 0;
  std::vector<PPtr> stack_;
  std::map<std::uint32_t, PPtr> memo_;
  std::vector<PPtr> all_;  // every object created, for the destructor
};

}  // namespace

std::vector<std::pair<std::string, std::string>> read_pickled_state_dict(const std::string& bytes,
                                                                         const std::string& path) {
  PickleReader r(bytes, path);
  PPtr top = r.run();
  if (top->kind != PValue::kDict) r.fail(bytes.size(), "top level is not a dict");
  std::optional<std::int64_t> version;
  PPtr data;
  for (auto& [k, v] : top->items) {
    if (k->kind != PValue::kStr) r.fail(bytes.size(), "top-level key is not a string");
    if (k->str == "protocol_version" && v->kind == PValue::kInt) version = v->i;
    else if (k->str == "data") data = v;
    else r.fail(bytes.size(), fmt::format("unexpected top-level key '{}'", k->str));
  }
  if (version != 1) r.fail(bytes.size(), "protocol_version is not 1");
  if (!data || data->kind != PValue::kDict) r.fail(bytes.size(), "'data' is not a dict");
  std::vector<std::pair<std::string, std::string>> out;
  std::set<std::string> seen;
  for (auto& [k, v] : data->items) {
    if (k->kind != PValue::kStr) r.fail(bytes.size(), "state-dict key is not a string");
    if (v->kind != PValue::kTensor || !v->tensor_built)
      r.fail(bytes.size(), fmt::format("value of '{}' is not a tensor reference", k->str));
    if (!seen.insert(k->str).second) r.fail(bytes.size(), fmt::format("duplicate key '{}'", k->str));
    out.emplace_back(k->str, v->str);
  }
  return out;
}

// ---------------------------------------------------------------- reading

namespace {

VarEntry make_entry(const std::string& name, const std::string& dir) {
  VarEntry e;
  e.name = name;
  e.dir = dir;
  struct stat st;
  std::string out = join(dir, "out");
  if (::stat(out.c_str(), &st) != 0) throw_file_error("stat", out, errno);
  e.out_size = static_cast<std::uint64_t>(st.st_size);
  std::string meta = join(dir, "meta");
  if (is_regular(meta)) {
    e.meta = parse_meta(read_whole(meta), meta);
    if (!dtype_from_data_type(e.meta->data_type))
      throw Error(fmt::format("OneFlow variable '{}': unsupported data_type {} in '{}'", name,
                              dtype_label(e.meta->data_type), meta));
  }
  return e;
}

std::int64_t tensor_index(const std::string& n) {
  if (n.rfind("tensor_", 0) != 0) return -1;
  try {
    return std::stoll(n.substr(7));
  } catch (...) {
    return -1;
  }
}

}  // namespace

VarDirInfo scan_variable_directory(const std::string& path) {
  VarDirInfo info;
  info.path = path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw Error(fmt::format("Directory {} doesn't exist!", path));
  if (S_ISREG(st.st_mode)) {
    unsigned char first = 0;
    ReadOnlyFile f(path);
    if (f.size() > 0) f.read_exact(0, &first, 1);
    if (first == 0x80)
      throw Error(fmt::format("'{}': single-file OneFlow pickle (flow.save \u2265 0.9.1) is not supported; re-save "
                              "with save_as_external_data=True or as a variable directory", path));
    throw Error(fmt::format("'{}': not a OneFlow variable directory", path));
  }
  if (!S_ISDIR(st.st_mode)) throw Error(fmt::format("Directory {} doesn't exist!", path));
  if (is_regular(join(path, "out"))) {
    info.layout = Layout::kSingleVariable;
    std::string base = fs::path(path).lexically_normal().filename().string();
    if (base.empty()) base = fs::path(path).lexically_normal().parent_path().filename().string();
    info.variables.push_back(make_entry(base, path));
    return info;
  }
  std::error_code mec;
  info.has_snapshot_done = fs::exists(join(path, "snapshot_done"), mec);
  bool pickle = is_regular(join(path, "pickled_data"));
  info.layout = pickle ? Layout::kPickle : Layout::kVariables;
  std::vector<std::string> names;
  std::error_code ec;
  for (auto it = fs::directory_iterator(path, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (!it->is_directory()) continue;
    names.push_back(it->path().filename().string());
  }
  if (ec) throw_file_error("opendir", path, ec.value());
  std::sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
    if (pickle) {
      auto ia = tensor_index(a), ib = tensor_index(b);
      if (ia != ib) return ia < ib;
    }
    return a < b;
  });
  for (auto& n : names) {
    std::string d = join(path, n);
    if (!is_regular(join(d, "out"))) {
      info.warnings.push_back(fmt::format("'{}' does not have valid tensor data. Please check it if it is unexpected.", d));
      continue;
    }
    info.variables.push_back(make_entry(n, d));
  }
  if (pickle) {
    try {
      info.pickle_names = read_pickled_state_dict(read_whole(join(path, "pickled_data")), join(path, "pickled_data"));
    } catch (const Error& e) {
      info.pickle_error = e.what();
    }
  } else if (!info.has_snapshot_done) {
    info.warnings.push_back(fmt::format(
        "{}: no snapshot_done marker; the save may be incomplete (normal for nn.Graph saves)", path));
  }
  return info;
}

Tensor read_variable(const VarEntry& e, const std::optional<Shape>& model_shape, std::optional<DType> model_dtype) {
  std::vector<std::int64_t> dims;
  DType dt;
  std::string out = join(e.dir, "out");
  if (e.meta) {
    dims = e.meta->shape;
    dt = *dtype_from_data_type(e.meta->data_type);
    std::uint64_t need = static_cast<std::uint64_t>(numel_of(dims)) * dtype_size(dt);
    if (e.out_size != need)
      throw Error(fmt::format("unexpected model snapshot size, path: {} (file {} bytes; meta {} {} needs {} bytes)", out,
                              e.out_size, shape_str(dims), dtype_label(e.meta->data_type), need));
  } else {
    if (!model_shape || !model_dtype)
      throw Error(fmt::format("'{}' has no meta; its shape and dtype must come from the model", e.dir));
    dims = model_shape->dims();
    dt = *model_dtype;
    std::uint64_t need = static_cast<std::uint64_t>(numel_of(dims)) * dtype_size(dt);
    if (e.out_size != need)
      throw Error(fmt::format("unexpected model snapshot size, path: {} (file {} bytes; model {} {} needs {} bytes)",
                              out, e.out_size, shape_str(dims), dtype_name(dt), need));
  }
  Tensor t = Tensor::empty(Shape(dims), dt);
  ReadOnlyFile f(out);
  if (f.size() != e.out_size)
    throw Error(fmt::format("'{}' changed size while being read ({} then {} bytes)", out, e.out_size, f.size()));
  if (t.nbytes() > 0) f.read_exact(0, t.data_ptr(), t.nbytes());
  return t;
}

NamedTensors load_raw_tensors(const std::string& path) {
  VarDirInfo info = scan_variable_directory(path);
  NamedTensors out;
  for (auto& e : info.variables) out.emplace_back(e.name, read_variable(e));
  return out;
}

NamedTensors load_named_tensors(const std::string& path) {
  VarDirInfo info = scan_variable_directory(path);
  if (info.layout != Layout::kPickle) {
    NamedTensors out;
    for (auto& e : info.variables) out.emplace_back(e.name, read_variable(e));
    return out;
  }
  if (!info.pickle_names)
    throw Error(fmt::format("'{}' is a pickle-era OneFlow save (flow.save v0.6\u2013v0.9): parameter names are stored "
                            "only in Python pickle 'pickled_data'; use load_raw_tensors() or enable the state-dict "
                            "pickle reader (the restricted reader refused it: {})",
                            path, info.pickle_error));
  std::map<std::string, const VarEntry*> by_dir;
  for (auto& e : info.variables) by_dir[e.name] = &e;
  NamedTensors out;
  for (auto& [key, dir] : *info.pickle_names) {
    auto it = by_dir.find(dir);
    if (it == by_dir.end())
      throw Error(fmt::format("'{}': pickled_data maps \"{}\" to '{}', which has no tensor data", path, key, dir));
    out.emplace_back(key, read_variable(*it->second));
  }
  return out;
}

// ---------------------------------------------------------------- writing

void check_variable_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos || name == "snapshot_done" || name == "pickled_data")
    throw Error(fmt::format("invalid OneFlow variable name \"{}\": a name must be non-empty, not '.' or '..', free "
                            "of '/' and NUL, and not snapshot_done or pickled_data",
                            name));
}

namespace {

void write_file_synced(const std::string& path, const void* data, std::size_t n, bool durable) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) throw_file_error("open", path, errno);
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    std::size_t chunk = std::min<std::size_t>(n, 32u << 20);
    ssize_t w = ::write(fd.get(), p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_file_error("write", path, errno);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  if (durable && ::fsync(fd.get()) != 0) throw_file_error("fsync", path, errno);
  fd.close_checked(path);
}

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0) throw_file_error("mkdir", path, errno);
}

}  // namespace

std::string train_step_name(const std::string& job) {
  return job.empty() ? std::string("System-Train-TrainStep") : fmt::format("System-Train-TrainStep-{}", job);
}

Tensor train_step_tensor(std::int64_t step) { return Tensor::full(Shape{1}, static_cast<double>(step), DType::kI64); }

void save_variable_directory(const std::string& path, const NamedTensors& tensors, const SaveOptions& options) {
  // Validate everything before touching the disk.
  std::set<std::string> names;
  std::vector<int> types;
  for (auto& [name, t] : tensors) {
    check_variable_name(name);
    if (!names.insert(name).second) throw Error(fmt::format("duplicate OneFlow variable name \"{}\"", name));
    if (!t.defined()) throw Error(fmt::format("OneFlow variable \"{}\" is an undefined tensor", name));
    types.push_back(data_type_for(t.dtype(), options.allow_extended_dtypes, name));
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    std::error_code iec;
    bool empty_dir = S_ISDIR(st.st_mode) && fs::is_empty(path, iec);
    if (iec) throw_file_error("opendir", path, iec.value());
    if (!empty_dir)
      throw Error(fmt::format("{} is a file or non-empty directory! A OneFlow variable directory must be saved to a "
                              "new or empty directory",
                              path));
  } else if (errno != ENOENT) {
    throw_file_error("stat", path, errno);
  }
  fs::path norm = fs::path(path).lexically_normal();
  if (norm.filename().empty()) norm = norm.parent_path();
  std::string base = norm.filename().string();
  std::string parent = norm.has_parent_path() ? norm.parent_path().string() : std::string(".");
  if (base.empty() || base == "." || base == "..") throw Error(fmt::format("invalid save target '{}'", path));
  // Stale temporaries of crashed saves to this target.
  std::string stale_prefix = fmt::format(".{}.tmp-", base);
  std::error_code ec;
  for (auto it = fs::directory_iterator(parent, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.rfind(stale_prefix, 0) == 0) {
      std::error_code rec;
      fs::remove_all(it->path(), rec);
    }
  }
  std::random_device rd;
  std::string tmp = join(parent, fmt::format("{}{:08x}{:08x}", stale_prefix, rd(), rd()));
  make_dir(tmp);
  try {
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      const auto& [name, t0] = tensors[k];
      const Tensor t = t0.to(Device::cpu());  // a variable in GPU memory is written from a host copy
      std::string d = join(tmp, name);
      make_dir(d);
      write_file_synced(join(d, "out"), t.nbytes() ? t.data_ptr() : nullptr, t.nbytes(), options.durable);
      std::string meta = format_meta(t.shape().dims(), types[k]);
      write_file_synced(join(d, "meta"), meta.data(), meta.size(), options.durable);
      if (options.durable) fsync_directory(d);
    }
    write_file_synced(join(tmp, "snapshot_done"), nullptr, 0, options.durable);
    if (options.durable) fsync_directory(tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      if (err == ENOTEMPTY || err == EEXIST) {
        throw Error(fmt::format("{} is a file or non-empty directory! (it was filled during the save)", path));
      }
      throw_file_error("rename to '" + path + "'", tmp, err);
    }
  } catch (...) {
    std::error_code rec;
    fs::remove_all(tmp, rec);
    throw;
  }
  if (options.durable) fsync_directory(parent);
}

}  // namespace anvil::oneflow
