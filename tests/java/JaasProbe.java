// JaasProbe: how Apache Kafka's Java client reads `sasl.jaas.config` values and `.properties`
// texts, for comparison with src/javaprops.rs, which must read them the same way.
//
// Run it on the jars scripts/stack resolves (no build step: Java's single-file launcher):
//
//   LIBS=${REPLIQATE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/repliqate}/kafka-$REPLIQATE_KAFKA_VERSION/libs
//   java -Xmx64m -cp "$LIBS/kafka-clients-$REPLIQATE_KAFKA_VERSION.jar:$(ls "$LIBS"/slf4j-api-*.jar | head -n 1)" \
//       tests/java/JaasProbe.java < cases.jsonl
//
// Input: one JSON object a line, {"kind": "jaas" | "properties", "text": "..."} (only string
// members; other members are ignored; blank lines are skipped).
// Output: one JSON line per case, in order, ASCII only (every other character as a JSON
// backslash-u escape; javac would read one written here):
//   jaas, accepted:       {"ok":true,"module":"...","flag":"required","options":[["name","value"],...]}
//                         options sorted by name; a name Java read as null comes first, as null
//   properties, accepted: {"ok":true,"entries":[["name","value"],...]}
//                         every put() in order, repeated names included (Java keeps the last)
//   refused:              {"ok":false,"error":"ExceptionClass: message"}
//   accepted, but a string holds half of a surrogate pair (which JSON parsers refuse):
//                         {"ok":true,"unpaired_surrogate":true}
//   a line that is not such an object: {"ok":false,"bad_input":"..."}
// The JAAS path is the client's own, JaasContext.loadClientContext (JaasConfig, then exactly one
// login module, then the disallowed-module check). stderr may carry SLF4J's notes.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import javax.security.auth.login.AppConfigurationEntry;
import javax.security.auth.login.AppConfigurationEntry.LoginModuleControlFlag;

import org.apache.kafka.common.config.types.Password;
import org.apache.kafka.common.security.JaasContext;

public class JaasProbe {

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.US_ASCII);
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            String result;
            try {
                Map<String, String> obj = new JsonObjectReader(line).read();
                String kind = obj.get("kind");
                String text = obj.get("text");
                if (text == null || !("jaas".equals(kind) || "properties".equals(kind))) {
                    result = "{\"ok\":false,\"bad_input\":" + json("expected {\"kind\":\"jaas\"|\"properties\",\"text\":...}") + "}";
                } else {
                    result = "jaas".equals(kind) ? jaas(text) : properties(text);
                }
            } catch (IllegalStateException e) {
                result = "{\"ok\":false,\"bad_input\":" + json(e.getMessage()) + "}";
            }
            out.println(result);
        }
        out.flush();
    }

    static String jaas(String text) {
        List<AppConfigurationEntry> entries;
        try {
            Map<String, Object> configs = new HashMap<>();
            configs.put("sasl.jaas.config", new Password(text));
            entries = JaasContext.loadClientContext(configs).configurationEntries();
        } catch (Throwable e) {
            return refused(e);
        }
        AppConfigurationEntry entry = entries.get(0);
        List<Map.Entry<String, ?>> options = new ArrayList<>(entry.getOptions().entrySet());
        options.sort(Comparator.comparing(Map.Entry::getKey, Comparator.nullsFirst(Comparator.naturalOrder())));
        List<String> strings = new ArrayList<>();
        strings.add(entry.getLoginModuleName());
        StringBuilder sb = new StringBuilder("{\"ok\":true,\"module\":").append(json(entry.getLoginModuleName()))
                .append(",\"flag\":").append(json(flag(entry.getControlFlag()))).append(",\"options\":[");
        for (int i = 0; i < options.size(); i++) {
            String name = options.get(i).getKey();
            String value = (String) options.get(i).getValue();
            strings.add(name);
            strings.add(value);
            sb.append(i == 0 ? "" : ",").append('[').append(json(name)).append(',').append(json(value)).append(']');
        }
        return wellFormed(strings) ? sb.append("]}").toString() : "{\"ok\":true,\"unpaired_surrogate\":true}";
    }

    static String flag(LoginModuleControlFlag flag) {
        if (flag == LoginModuleControlFlag.REQUIRED) return "required";
        if (flag == LoginModuleControlFlag.REQUISITE) return "requisite";
        if (flag == LoginModuleControlFlag.SUFFICIENT) return "sufficient";
        if (flag == LoginModuleControlFlag.OPTIONAL) return "optional";
        return String.valueOf(flag);
    }

    /** Properties that remember every put() of load(), in order. */
    static final class Recording extends Properties {
        final List<String> puts = new ArrayList<>();

        @Override
        public synchronized Object put(Object key, Object value) {
            puts.add((String) key);
            puts.add((String) value);
            return super.put(key, value);
        }
    }

    static String properties(String text) {
        Recording props = new Recording();
        try {
            props.load(new StringReader(text));
        } catch (Throwable e) {
            return refused(e);
        }
        if (!wellFormed(props.puts)) {
            return "{\"ok\":true,\"unpaired_surrogate\":true}";
        }
        StringBuilder sb = new StringBuilder("{\"ok\":true,\"entries\":[");
        for (int i = 0; i < props.puts.size(); i += 2) {
            sb.append(i == 0 ? "" : ",").append('[').append(json(props.puts.get(i))).append(',')
                    .append(json(props.puts.get(i + 1))).append(']');
        }
        return sb.append("]}").toString();
    }

    static String refused(Throwable e) {
        return "{\"ok\":false,\"error\":" + json(e.getClass().getName() + ": " + e.getMessage()) + "}";
    }

    static boolean wellFormed(List<String> strings) {
        for (String s : strings) {
            if (s == null) continue;
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                    i++;
                } else if (Character.isSurrogate(c)) {
                    return false;
                }
            }
        }
        return true;
    }

    /** A JSON string (or null), ASCII only. */
    static String json(String s) {
        if (s == null) return "null";
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c >= 0x20 && c < 0x7f) {
                sb.append(c);
            } else {
                sb.append(String.format("\\u%04x", (int) c));
            }
        }
        return sb.append('"').toString();
    }

    /** Just enough JSON for one flat object of string members (others are skipped if simple). */
    static final class JsonObjectReader {
        private final String s;
        private int i;

        JsonObjectReader(String s) {
            this.s = s;
        }

        Map<String, String> read() {
            Map<String, String> out = new HashMap<>();
            expect('{');
            if (peek() == '}') {
                i++;
                return out;
            }
            while (true) {
                String key = string();
                expect(':');
                if (peek() == '"') {
                    out.put(key, string());
                } else {
                    // true, false, null or a number: not ours.
                    while (i < s.length() && ",} \t".indexOf(s.charAt(i)) < 0) i++;
                }
                char c = next();
                if (c == '}') break;
                if (c != ',') throw new IllegalStateException("expected , or } at " + (i - 1));
            }
            skipSpace();
            if (i != s.length()) throw new IllegalStateException("text after the object at " + i);
            return out;
        }

        private void skipSpace() {
            while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) i++;
        }

        private char peek() {
            skipSpace();
            if (i >= s.length()) throw new IllegalStateException("unexpected end of line");
            return s.charAt(i);
        }

        private char next() {
            char c = peek();
            i++;
            return c;
        }

        private void expect(char c) {
            if (next() != c) throw new IllegalStateException("expected " + c + " at " + (i - 1));
        }

        private String string() {
            expect('"');
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (i >= s.length()) throw new IllegalStateException("unterminated string");
                char c = s.charAt(i++);
                if (c == '"') return sb.toString();
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (i >= s.length()) throw new IllegalStateException("unterminated escape");
                char e = s.charAt(i++);
                switch (e) {
                    case '"': case '\\': case '/': sb.append(e); break;
                    case 'b': sb.append('\b'); break;
                    case 'f': sb.append('\f'); break;
                    case 'n': sb.append('\n'); break;
                    case 'r': sb.append('\r'); break;
                    case 't': sb.append('\t'); break;
                    case 'u':
                        if (i + 4 > s.length()) throw new IllegalStateException("short \\u escape");
                        try {
                            sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        } catch (NumberFormatException x) {
                            throw new IllegalStateException("bad \\u escape at " + i);
                        }
                        i += 4;
                        break;
                    default: throw new IllegalStateException("bad escape \\" + e);
                }
            }
        }
    }
}
