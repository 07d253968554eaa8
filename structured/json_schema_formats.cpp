#include "structured/json_schema_formats.h"

#include <array>

namespace pagoda::structured {
namespace {

// Years 0001-9999 (Python's date.min is year 1).
#define PAGODA_YEAR "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
// Leap years among them (divisible by 4, centuries only by 400).
#define PAGODA_LEAP_YEAR "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
// A calendar date with the right number of days per month.
#define PAGODA_DATE                                                            \
  "(?:" PAGODA_YEAR "-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|" PAGODA_YEAR \
  "-(?:0[13-9]|1[0-2])-(?:29|30)|" PAGODA_YEAR "-(?:0[13578]|1[02])-31|" PAGODA_LEAP_YEAR "-02-29)"
// RFC 3339 full-time: hours 00-23, no leap second, offset Z or +-hh:mm.
#define PAGODA_TIME "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"

#define PAGODA_HEX "[0-9a-fA-F]"
#define PAGODA_H16 PAGODA_HEX "{1,4}"
#define PAGODA_OCTET "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#define PAGODA_IPV4 PAGODA_OCTET "(?:\\." PAGODA_OCTET "){3}"
#define PAGODA_IPV6                                                                                                   \
  "(?:(?:" PAGODA_H16 ":){7}" PAGODA_H16 "|(?:" PAGODA_H16 ":){1,7}:|(?:" PAGODA_H16 ":){1,6}:" PAGODA_H16            \
  "|(?:" PAGODA_H16 ":){1,5}(?::" PAGODA_H16 "){1,2}|(?:" PAGODA_H16 ":){1,4}(?::" PAGODA_H16 "){1,3}|(?:" PAGODA_H16 \
  ":){1,3}(?::" PAGODA_H16 "){1,4}|(?:" PAGODA_H16 ":){1,2}(?::" PAGODA_H16 "){1,5}|" PAGODA_H16 ":(?::" PAGODA_H16   \
  "){1,6}|:(?:(?::" PAGODA_H16 "){1,7}|:))"

// Host names: at most four labels of at most 62 characters (so at most 251
// in all), letters, digits and inner hyphens; the last label starts with a
// letter (never all-numeric).
#define PAGODA_LABEL "[A-Za-z0-9](?:[A-Za-z0-9-]{0,60}[A-Za-z0-9])?"
#define PAGODA_HOSTNAME "(?:" PAGODA_LABEL "\\.){0,3}[A-Za-z](?:[A-Za-z0-9-]{0,60}[A-Za-z0-9])?"

// RFC 3986 pieces (no IP literals).
#define PAGODA_PCT "%[0-9A-Fa-f]{2}"
#define PAGODA_PCHAR "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|" PAGODA_PCT ")"
#define PAGODA_AUTHORITY \
  "(?:(?:[A-Za-z0-9._~!$&'()*+,;=:-]|" PAGODA_PCT ")*@)?(?:[A-Za-z0-9._~!$&'()*+,;=-]|" PAGODA_PCT ")*(?::[0-9]*)?"
#define PAGODA_QUERY_FRAGMENT "(?:\\?(?:" PAGODA_PCHAR "|[/?])*)?(?:#(?:" PAGODA_PCHAR "|[/?])*)?"
#define PAGODA_URI                                                                                                   \
  "[A-Za-z][A-Za-z0-9+.-]*:(?://" PAGODA_AUTHORITY "(?:/" PAGODA_PCHAR "*)*|/?(?:" PAGODA_PCHAR "+(?:/" PAGODA_PCHAR \
  "*)*)?)" PAGODA_QUERY_FRAGMENT
#define PAGODA_RELATIVE_REF                                                                 \
  "(?://" PAGODA_AUTHORITY "(?:/" PAGODA_PCHAR "*)*|/(?:" PAGODA_PCHAR "+(?:/" PAGODA_PCHAR \
  "*)*)?|(?:[A-Za-z0-9._~!$&'()*+,;=@-]|" PAGODA_PCT ")+(?:/" PAGODA_PCHAR "*)*|)" PAGODA_QUERY_FRAGMENT

struct Entry {
  std::string_view name;
  FormatPattern::Kind kind;
  const char* pattern;
  uint32_t fixed_length;
};

constexpr std::array kFormats = {
    Entry{"date-time", FormatPattern::Kind::kPattern, PAGODA_DATE "T" PAGODA_TIME, 0},
    Entry{"date", FormatPattern::Kind::kPattern, PAGODA_DATE, 10},
    Entry{"time", FormatPattern::Kind::kPattern, PAGODA_TIME, 0},
    Entry{"uuid", FormatPattern::Kind::kPattern,
          PAGODA_HEX "{8}-" PAGODA_HEX "{4}-" PAGODA_HEX "{4}-" PAGODA_HEX "{4}-" PAGODA_HEX "{12}", 36},
    Entry{"email", FormatPattern::Kind::kPattern,
          "[A-Za-z0-9_%+-]+(?:\\.[A-Za-z0-9_%+-]+)*@" PAGODA_LABEL "(?:\\." PAGODA_LABEL ")*", 0},
    Entry{"idn-email", FormatPattern::Kind::kPattern,
          "[A-Za-z0-9_%+-]+(?:\\.[A-Za-z0-9_%+-]+)*@" PAGODA_LABEL "(?:\\." PAGODA_LABEL ")*", 0},
    Entry{"ipv4", FormatPattern::Kind::kPattern, PAGODA_IPV4, 0},
    Entry{"ip-address", FormatPattern::Kind::kPattern, PAGODA_IPV4, 0},
    Entry{"ipv6", FormatPattern::Kind::kPattern, PAGODA_IPV6, 0},
    Entry{"hostname", FormatPattern::Kind::kPattern, PAGODA_HOSTNAME, 0},
    Entry{"host-name", FormatPattern::Kind::kPattern, PAGODA_HOSTNAME, 0},
    Entry{"idn-hostname", FormatPattern::Kind::kPattern, PAGODA_HOSTNAME, 0},
    Entry{"uri", FormatPattern::Kind::kPattern, PAGODA_URI, 0},
    Entry{"iri", FormatPattern::Kind::kPattern, PAGODA_URI, 0},
    Entry{"uri-reference", FormatPattern::Kind::kPattern, "(?:" PAGODA_URI "|" PAGODA_RELATIVE_REF ")", 0},
    Entry{"iri-reference", FormatPattern::Kind::kPattern, "(?:" PAGODA_URI "|" PAGODA_RELATIVE_REF ")", 0},
    Entry{"json-pointer", FormatPattern::Kind::kPattern, "(?:/(?:[^~/]|~[01])*)*", 0},
    // Strings without regex syntax characters compile in every dialect.
    Entry{"regex", FormatPattern::Kind::kPattern, "[^\\\\^$.|?*+()\\[\\]{}]*", 0},
    // Asserted by validators (given their optional libraries), no pattern here.
    Entry{"duration", FormatPattern::Kind::kUnsupported, nullptr, 0},
    Entry{"relative-json-pointer", FormatPattern::Kind::kUnsupported, nullptr, 0},
    Entry{"uri-template", FormatPattern::Kind::kUnsupported, nullptr, 0},
    Entry{"color", FormatPattern::Kind::kUnsupported, nullptr, 0},
};

}  // namespace

FormatPattern format_pattern(std::string_view format) {
  for (const Entry& entry : kFormats) {
    if (entry.name == format) {
      return FormatPattern{entry.kind, entry.pattern ? entry.pattern : "", entry.fixed_length};
    }
  }
  return {};
}

}  // namespace pagoda::structured
