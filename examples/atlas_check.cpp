// Checks the output of lowbit-atlas (the test examples.atlas_output_valid): atlas.svg is
// well-formed (one <svg> root, every tag closed in order, one marker per point), atlas.csv holds
// every scheme x distribution x policy once, atlas.md has a table row per scheme and
// distribution, and the numbers obey what quantization theory says they must: more bits give
// more SQNR, a rotation rescues INT4 on outlier-laden data, and the MSE search never loses to
// absmax by more than rounding.
//
//   lowbit-atlas-check DIR     (exit status 0 when every check passes; each failure is printed)
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "FAIL: " << what << '\n';
    ++failures;
  }
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  expect(static_cast<bool>(f), "cannot open " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Well-formed-ish XML: tags nest and close in order, the root is <svg>, nothing follows it.
// Returns the number of elements with class="pt" (one per data point).
std::size_t check_svg(const std::string& svg) {
  const std::size_t first = svg.find_first_not_of(" \t\r\n");
  const std::size_t last = svg.find_last_not_of(" \t\r\n");
  expect(first != std::string::npos && svg.compare(first, 4, "<svg") == 0, "atlas.svg does not start with <svg");
  expect(last != std::string::npos && last >= 5 && svg.compare(last - 5, 6, "</svg>") == 0,
         "atlas.svg does not end with </svg>");
  std::vector<std::string> open;
  std::size_t points = 0, elements = 0;
  for (std::size_t i = svg.find('<'); i != std::string::npos; i = svg.find('<', i + 1)) {
    const std::size_t end = svg.find('>', i);
    if (end == std::string::npos) {
      expect(false, "atlas.svg: unterminated tag at byte " + std::to_string(i));
      break;
    }
    const std::string tag = svg.substr(i + 1, end - i - 1);
    expect(tag.find('<') == std::string::npos, "atlas.svg: '<' inside a tag at byte " + std::to_string(i));
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      expect(!open.empty() && open.back() == name,
             "atlas.svg: </" + name + "> closes " + (open.empty() ? std::string("nothing") : "<" + open.back() + ">"));
      if (!open.empty()) open.pop_back();
      continue;
    }
    ++elements;
    expect(!open.empty() || elements == 1, "atlas.svg: more than one root element");
    if (tag.find("class=\"pt\"") != std::string::npos) ++points;
    if (tag.back() != '/') open.push_back(tag.substr(0, tag.find_first_of(" \t\r\n")));
  }
  expect(open.empty(), "atlas.svg: " + std::to_string(open.size()) + " element(s) left open");
  return points;
}

struct row {
  double bits, sqnr;
};
// (distribution, scheme, policy) -> row
using table = std::map<std::tuple<std::string, std::string, std::string>, row>;

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (char c : line) {
    if (c == '"')
      quoted = !quoted;
    else if (c == ',' && !quoted)
      cells.emplace_back();
    else
      cells.back() += c;
  }
  return cells;
}

table read_csv(const std::string& csv) {
  table t;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  expect(line == "distribution,scheme,policy,bits_per_weight,sqnr_db", "atlas.csv: unexpected header '" + line + "'");
  while (std::getline(in, line)) {
    const auto c = split_csv(line);
    if (c.size() != 5) {
      expect(false, "atlas.csv: not 5 cells: '" + line + "'");
      continue;
    }
    try {
      const row r{std::stod(c[3]), std::stod(c[4])};
      expect(std::isfinite(r.sqnr) && r.sqnr > -20 && r.sqnr < 100, "atlas.csv: implausible SQNR in '" + line + "'");
      expect(r.bits > 1 && r.bits < 9, "atlas.csv: implausible bits/weight in '" + line + "'");
      expect(t.emplace(std::make_tuple(c[0], c[1], c[2]), r).second, "atlas.csv: duplicate row '" + line + "'");
    } catch (const std::exception&) {
      expect(false, "atlas.csv: not numbers in '" + line + "'");
    }
  }
  return t;
}

const std::vector<std::string> distributions{"Gaussian", "Laplace", "Student-t(3)", "Outliers"};
const std::vector<std::string> policies{"rtn/absmax", "rtn/mse", "hadamard + rtn/absmax", "hadamard + rtn/mse"};

// The SQNR or bits/weight of a point, NaN where it is missing (so every comparison fails).
double sqnr(const table& t, const std::string& d, const std::string& s, const std::string& p) {
  const auto it = t.find({d, s, p});
  return it == t.end() ? std::nan("") : it->second.sqnr;
}
double bits(const table& t, const std::string& d, const std::string& s, const std::string& p) {
  const auto it = t.find({d, s, p});
  return it == t.end() ? std::nan("") : it->second.bits;
}

void check_numbers(const table& t, const std::set<std::string>& schemes) {
  for (const char* s :
       {"int8_group<128>", "int4_group<128>", "int_sym<2, 128>", "mxfp8_e4m3", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4",
        "mxint8", "nvfp4", "nf4_scheme<64>", "nf4_dq", "ternary_absmean", "ternary_absmean_base3"})
    expect(schemes.count(s) == 1, std::string("atlas.csv: scheme ") + s + " is missing");
  expect(t.size() == schemes.size() * distributions.size() * policies.size(),
         "atlas.csv: " + std::to_string(t.size()) + " rows, expected " + std::to_string(schemes.size()) +
             " schemes x " + std::to_string(distributions.size()) + " distributions x " +
             std::to_string(policies.size()) + " policies");
  for (const auto& s : schemes)
    for (const auto& d : distributions)
      for (const auto& p : policies)
        expect(t.count({d, s, p}) == 1, "atlas.csv: no row for " + d + ", " + s + ", " + p);

  for (const auto& d : distributions)
    for (const auto& p : policies) {
      const std::string where = " (" + d + ", " + p + ")";
      const double i8 = sqnr(t, d, "int8_group<128>", p), i4 = sqnr(t, d, "int4_group<128>", p),
                   i2 = sqnr(t, d, "int_sym<2, 128>", p);
      expect(i8 > i4 + 10 && i4 > i2 + 3, "INT8 > INT4 > INT2 does not hold" + where);
      expect(sqnr(t, d, "mxfp8_e4m3", p) > sqnr(t, d, "mxfp6_e3m2", p) + 2 &&
                 sqnr(t, d, "mxfp6_e2m3", p) > sqnr(t, d, "mxfp4", p) + 5,
             "MXFP8 > MXFP6 > MXFP4 does not hold" + where);
      expect(std::fabs(sqnr(t, d, "ternary_absmean", p) - sqnr(t, d, "ternary_absmean_base3", p)) < 1e-9,
             "ternary packed in base 3 does not give the same values as 2-bit codes" + where);
    }
  for (const auto& s : schemes)
    for (const auto& d : distributions) {
      // The search starts from the absmax scale and keeps a candidate only if it lowers the error.
      expect(sqnr(t, d, s, "rtn/mse") >= sqnr(t, d, s, "rtn/absmax") - 0.05,
             "MSE search loses to absmax for " + s + " on " + d);
      expect(sqnr(t, d, s, "hadamard + rtn/mse") >= sqnr(t, d, s, "hadamard + rtn/absmax") - 0.05,
             "MSE search loses to absmax after the rotation for " + s + " on " + d);
      for (const auto& p : policies)
        expect(bits(t, d, s, p) == bits(t, d, s, policies[0]), "bits/weight of " + s + " depend on the policy");
    }
  // Sparse outliers wreck a 128-wide absmax group; the rotation spreads them over the row.
  expect(sqnr(t, "Outliers", "int4_group<128>", "hadamard + rtn/absmax") >
             sqnr(t, "Outliers", "int4_group<128>", "rtn/absmax") + 3,
         "the Hadamard rotation does not rescue INT4 on outlier-laden data");
  // A rotation of Gaussian data is Gaussian again: it neither helps nor hurts much.
  expect(std::fabs(sqnr(t, "Gaussian", "int4_group<128>", "hadamard + rtn/absmax") -
                   sqnr(t, "Gaussian", "int4_group<128>", "rtn/absmax")) < 1,
         "the Hadamard rotation changes INT4 on Gaussian data by 1 dB or more");
}

// One section per distribution, each with a table row per scheme holding the four SQNRs.
void check_markdown(const std::string& md, const std::set<std::string>& schemes) {
  expect(md.find("![") != std::string::npos && md.find("atlas.svg") != std::string::npos,
         "atlas.md does not embed atlas.svg");
  for (const auto& d : distributions) {
    const std::size_t at = md.find("\n## " + d + "\n");
    if (at == std::string::npos) {
      expect(false, "atlas.md: no section for " + d);
      continue;
    }
    std::istringstream in(md.substr(at + 1));
    std::string line;
    std::getline(in, line);
    std::set<std::string> seen;
    while (std::getline(in, line) && line.rfind("## ", 0) != 0) {
      if (line.rfind("| `", 0) != 0) continue;
      std::vector<std::string> cells;
      for (std::size_t i = 1, j; (j = line.find('|', i)) != std::string::npos; i = j + 1)
        cells.push_back(line.substr(i, j - i));
      const std::string scheme = cells.empty() ? "" : cells[0].substr(2, cells[0].rfind('`') - 2);
      expect(cells.size() == 3 + policies.size(), "atlas.md: wrong cell count in '" + line + "'");
      for (std::size_t c = 2; c < cells.size(); ++c) {
        std::string v;
        for (char ch : cells[c])
          if (ch != '*' && ch != ' ') v += ch;
        char* end = nullptr;
        std::strtod(v.c_str(), &end);
        expect(!v.empty() && *end == '\0', "atlas.md: not a number in '" + line + "'");
      }
      expect(seen.insert(scheme).second, "atlas.md: " + scheme + " twice under " + d);
    }
    expect(seen == schemes, "atlas.md: the " + d + " table has " + std::to_string(seen.size()) +
                                " schemes, atlas.csv has " + std::to_string(schemes.size()));
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: lowbit-atlas-check DIR   (the --out directory of lowbit-atlas)\n";
    return 2;
  }
  const std::string dir = argv[1];
  const table t = read_csv(slurp(dir + "/atlas.csv"));
  std::set<std::string> schemes;
  for (const auto& [key, r] : t) schemes.insert(std::get<1>(key));
  if (!t.empty()) {
    check_numbers(t, schemes);
    check_markdown(slurp(dir + "/atlas.md"), schemes);
  }
  expect(!t.empty(), "atlas.csv has no data");
  const std::size_t points = check_svg(slurp(dir + "/atlas.svg"));
  expect(points == t.size(),
         "atlas.svg has " + std::to_string(points) + " data points, atlas.csv " + std::to_string(t.size()) + " rows");
  if (failures) {
    std::cerr << failures << " check(s) failed for " << dir << '\n';
    return 1;
  }
  std::cout << "atlas output in " << dir << " is valid: " << schemes.size() << " schemes, " << t.size() << " points\n";
}
