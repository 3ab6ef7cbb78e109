// The tutorial's Java client, with nothing but the JDK: lists the pods of a
// namespace with a service account's token and prints what the tutorial
// (and `cargo xtask pods`) prints. TLS trust is the JVM's default
// SSLContext, set by the javax.net.ssl.* system properties alone, as a
// fabric8 or any other JDK client would get it.
//
//   javac -d OUT ListPods.java
//   java -cp OUT -Djavax.net.ssl.trustStore=ts.p12 -Djavax.net.ssl.trustStoreType=PKCS12 \
//       ListPods https://127.0.0.1:6443 flask-ns token-file
//
// Exit 0 with the list; 1 with the JDK's own error (cause chain) on stderr.

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class ListPods {
    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: ListPods SERVER NAMESPACE TOKEN_FILE");
            System.exit(2);
        }
        try {
            String token = Files.readString(Path.of(args[2])).trim();
            HttpRequest request = HttpRequest.newBuilder(URI.create(args[0] + "/api/v1/namespaces/" + args[1] + "/pods"))
                    .header("Authorization", "Bearer " + token)
                    .header("Accept", "application/json")
                    .GET()
                    .build();
            HttpResponse<String> response =
                    HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                System.err.println("HTTP " + response.statusCode() + ": " + response.body());
                System.exit(1);
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> list = (Map<String, Object>) new Json(response.body()).value();
            @SuppressWarnings("unchecked")
            List<Object> items = (List<Object>) list.get("items");
            System.out.println("Number of pods = " + items.size());
            for (Object item : items) {
                @SuppressWarnings("unchecked")
                Map<String, Object> metadata = (Map<String, Object>) ((Map<String, Object>) item).get("metadata");
                System.out.println("pod name = " + metadata.get("name"));
            }
        } catch (Exception e) {
            // The JDK's own words, outermost first.
            StringBuilder chain = new StringBuilder();
            for (Throwable t = e; t != null; t = t.getCause()) {
                chain.append(chain.length() == 0 ? "" : "\ncaused by: ").append(t);
            }
            System.err.println(chain);
            System.exit(1);
        }
    }

    /** A JSON reader (RFC 8259) into maps, lists, strings, numbers, booleans and null. */
    static final class Json {
        private final String s;
        private int i;

        Json(String s) {
            this.s = s;
        }

        Object value() {
            Object v = parse();
            space();
            if (i != s.length()) {
                throw error("trailing text");
            }
            return v;
        }

        private Object parse() {
            space();
            if (i >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(i);
            switch (c) {
                case '{': {
                    i++;
                    Map<String, Object> map = new LinkedHashMap<>();
                    space();
                    if (peek('}')) {
                        return map;
                    }
                    do {
                        space();
                        String key = string();
                        space();
                        expect(':');
                        map.put(key, parse());
                        space();
                    } while (peek(','));
                    expect('}');
                    return map;
                }
                case '[': {
                    i++;
                    List<Object> list = new ArrayList<>();
                    space();
                    if (peek(']')) {
                        return list;
                    }
                    do {
                        list.add(parse());
                        space();
                    } while (peek(','));
                    expect(']');
                    return list;
                }
                case '"':
                    return string();
                case 't':
                    return word("true", Boolean.TRUE);
                case 'f':
                    return word("false", Boolean.FALSE);
                case 'n':
                    return word("null", null);
                default: {
                    int start = i;
                    while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
                        i++;
                    }
                    if (start == i) {
                        throw error("unexpected '" + c + "'");
                    }
                    return Double.parseDouble(s.substring(start, i));
                }
            }
        }

        private String string() {
            expect('"');
            StringBuilder out = new StringBuilder();
            while (true) {
                if (i >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(i++);
                if (c == '"') {
                    return out.toString();
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                char e = s.charAt(i++);
                switch (e) {
                    case 'b': out.append('\b'); break;
                    case 'f': out.append('\f'); break;
                    case 'n': out.append('\n'); break;
                    case 'r': out.append('\r'); break;
                    case 't': out.append('\t'); break;
                    case 'u': out.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
                    default: out.append(e);
                }
            }
        }

        private Object word(String w, Object v) {
            if (!s.startsWith(w, i)) {
                throw error("unexpected text");
            }
            i += w.length();
            return v;
        }

        private void space() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }

        private boolean peek(char c) {
            if (i < s.length() && s.charAt(i) == c) {
                i++;
                return true;
            }
            return false;
        }

        private void expect(char c) {
            if (!peek(c)) {
                throw error("expected '" + c + "'");
            }
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException("JSON: " + what + " at " + i);
        }
    }
}
