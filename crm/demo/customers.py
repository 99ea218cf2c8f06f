"""Demo shoppers: names, street addresses in each country's format and valid, unused phone numbers."""
from __future__ import annotations

import random

import phonenumbers

from crm.demo.common import SeedError, _digits
from crm.demo.markets import City

# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------

FIRST_NAMES = {
    "DE": "Lukas Leon Finn Paul Jonas Felix Maximilian Elias Ben Noah Anna Marie Sophie Emma Mia Hannah Lena Laura Julia Katharina Sabine Thomas Stefan Andreas",
    "FR": "Camille Léa Manon Chloé Inès Louise Julie Claire Lucas Hugo Louis Gabriel Arthur Jules Thomas Nicolas Antoine Mathilde Élodie Théo",
    "ES": "Lucía María Paula Sofía Carmen Laura Marta Elena Alejandro Pablo Daniel Javier Sergio Carlos Hugo Álvaro Diego Irene Raquel Adrián",
    "IT": "Giulia Francesca Chiara Sara Martina Alessia Elena Valentina Marco Luca Alessandro Matteo Lorenzo Andrea Davide Francesco Giovanni Federica Simone Paolo",
    "NL": "Daan Sem Lucas Levi Finn Milan Jesse Bram Emma Julia Tess Sophie Anna Sanne Lotte Fleur Eva Noor Ruben Thijs",
    "GB": "Oliver George Harry Jack Charlie Thomas James William Olivia Amelia Isla Ava Emily Sophie Grace Chloe Charlotte Hannah Daniel Priya",
    "US": "James Michael Robert David John Christopher Daniel Matthew Emily Jessica Ashley Sarah Jennifer Madison Olivia Emma Ethan Tyler Mia Chloe Carlos Jasmine",
    "JP": "Yuki Haruto Sota Yuto Ren Takumi Kenji Hiroshi Daiki Sakura Yui Hina Aoi Mei Misaki Haruka Ayaka Nanami Riko Kaito",
    "BR": "Ana Maria Juliana Mariana Beatriz Larissa Camila Fernanda Gabriela Lucas Pedro Gabriel Rafael Matheus Gustavo Felipe João Bruno Thiago Letícia",
    "MX": "Sofía Valentina Regina Camila Ximena Fernanda Daniela Mariana Santiago Mateo Diego Emiliano Leonardo José Luis Miguel Alejandro Andrea Guadalupe Jorge",
    "AU": "Jack Oliver William Noah Thomas Lachlan Liam Cooper Charlotte Olivia Ava Mia Chloe Isla Zoe Ruby Matilda Harper Ethan Sienna",
    "CA": "Liam Noah Benjamin Lucas Jacob Nathan Samuel Olivia Emma Charlotte Chloé Amelia Léa Sophia Maya Gabriel Félix Avery",
    "SE": "Erik Lars Karl Anders Johan Oscar William Hugo Elsa Alice Maja Astrid Ebba Wilma Saga Linnea Anna Ingrid",
}
LAST_NAMES = {
    "DE": "Müller|Schmidt|Schneider|Fischer|Weber|Meyer|Wagner|Becker|Schulz|Hoffmann|Koch|Richter|Klein|Wolf|Schröder|Neumann|Zimmermann|Krüger|Hartmann|Lange",
    "FR": "Martin|Bernard|Dubois|Thomas|Robert|Richard|Petit|Durand|Leroy|Moreau|Simon|Laurent|Lefèvre|Michel|Garcia|David|Bertrand|Roux|Fournier|Girard",
    "ES": "García|Fernández|González|Rodríguez|López|Martínez|Sánchez|Pérez|Gómez|Martín|Jiménez|Ruiz|Hernández|Díaz|Moreno|Álvarez|Romero|Navarro|Torres|Domínguez",
    "IT": "Rossi|Russo|Ferrari|Esposito|Bianchi|Romano|Colombo|Ricci|Marino|Greco|Bruno|Gallo|Conti|De Luca|Mancini|Costa|Giordano|Rizzo|Lombardi|Moretti",
    "NL": "de Jong|Jansen|de Vries|van den Berg|van Dijk|Bakker|Janssen|Visser|Smit|Meijer|de Boer|Mulder|de Groot|Bos|Vos|Peters|Hendriks|van Leeuwen|Dekker|Brouwer",
    "GB": "Smith|Jones|Taylor|Brown|Williams|Wilson|Johnson|Davies|Robinson|Wright|Thompson|Evans|Walker|White|Roberts|Green|Hall|Wood|Patel|Khan",
    "US": "Smith|Johnson|Williams|Brown|Jones|Miller|Davis|Garcia|Rodriguez|Wilson|Martinez|Anderson|Taylor|Thomas|Moore|Jackson|Lee|Nguyen|Kim|Carter",
    "JP": "Sato|Suzuki|Takahashi|Tanaka|Watanabe|Ito|Yamamoto|Nakamura|Kobayashi|Kato|Yoshida|Yamada|Sasaki|Yamaguchi|Matsumoto|Inoue|Kimura|Hayashi|Shimizu|Mori",
    "BR": "Silva|Santos|Oliveira|Souza|Rodrigues|Ferreira|Alves|Pereira|Lima|Gomes|Costa|Ribeiro|Martins|Carvalho|Almeida|Lopes|Araújo|Barbosa|Rocha|Cardoso",
    "MX": "Hernández|García|Martínez|López|González|Pérez|Rodríguez|Sánchez|Ramírez|Cruz|Flores|Gómez|Morales|Vázquez|Jiménez|Reyes|Díaz|Torres|Gutiérrez|Ruiz",
    "AU": "Smith|Jones|Williams|Brown|Wilson|Taylor|Johnson|White|Martin|Anderson|Thompson|Nguyen|Thomas|Walker|Harris|Lee|Ryan|Robinson|Kelly|King",
    "CA": "Smith|Tremblay|Martin|Roy|Wilson|MacDonald|Gagnon|Taylor|Campbell|Anderson|Leblanc|Lee|Wong|Singh|Côté|Bouchard|Morrison|Fraser",
    "SE": "Andersson|Johansson|Karlsson|Nilsson|Eriksson|Larsson|Olsson|Persson|Svensson|Gustafsson|Pettersson|Lindberg|Lindqvist|Berg|Holm|Sandberg",
}
STREETS = {
    "DE": "Hauptstraße|Bahnhofstraße|Gartenstraße|Schulstraße|Lindenstraße|Kastanienallee|Goethestraße|Schillerstraße|Bergstraße|Friedrichstraße|Mozartstraße|Am Markt",
    "FR": "rue de la République|avenue Jean Jaurès|rue Victor Hugo|boulevard Voltaire|rue du Faubourg Saint-Antoine|rue des Lilas|avenue de la Gare|rue Pasteur|rue Nationale|place de la Liberté",
    "ES": "Calle Mayor|Calle de Alcalá|Avenida de la Constitución|Calle Real|Paseo de Gracia|Calle San Vicente|Gran Vía|Calle del Sol|Avenida de América|Calle Nueva",
    "IT": "Via Roma|Via Garibaldi|Corso Vittorio Emanuele II|Via Mazzini|Via Dante Alighieri|Via Cavour|Viale della Repubblica|Via Verdi|Via Manzoni|Via XX Settembre",
    "NL": "Kerkstraat|Dorpsstraat|Prinsengracht|Stationsweg|Molenstraat|Julianalaan|Schoolstraat|Nieuwstraat|Beatrixlaan|Oranjestraat",
    "GB": "High Street|Station Road|Church Lane|Victoria Road|Park Avenue|Mill Lane|King Street|Queens Road|Albert Road|The Crescent",
    "US": "Maple Avenue|Oak Street|Main Street|Pine Street|Cedar Lane|Elm Street|Washington Avenue|Lake Drive|Park Place|Highland Avenue",
    "JP": "Jingumae|Ebisu|Sangenjaya|Azabu-Juban|Nishi-Shinjuku|Nakameguro|Umeda|Minatomirai|Sakae|Tenjin|Kawaramachi|Odori-Nishi",
    "BR": "Rua Augusta|Avenida Paulista|Rua das Flores|Rua XV de Novembro|Avenida Brasil|Rua Sete de Setembro|Rua da Consolação|Avenida Atlântica|Rua Bahia|Rua Padre Anchieta",
    "MX": "Av. Insurgentes Sur|Calle Francisco I. Madero|Paseo de la Reforma|Calle Hidalgo|Av. Juárez|Calle Morelos|Av. Vallarta|Calle 5 de Mayo|Av. Revolución|Calle Allende",
    "AU": "George Street|Collins Street|Queen Street|Hay Street|King William Street|Elizabeth Street|Smith Street|Church Street|Beach Road|Park Road",
    "CA": "Queen Street West|King Street East|Yonge Street|Main Street|Maple Avenue|Rue Saint-Denis|Boulevard Saint-Laurent|Granville Street|Bank Street|Elgin Street",
    "SE": "Storgatan|Drottninggatan|Kungsgatan|Vasagatan|Skolgatan|Järnvägsgatan|Linnégatan|Götgatan|Sveavägen|Östra Hamngatan",
}
COLONIAS = ("Centro", "Del Valle", "Roma Norte", "Condesa", "Narvarte", "Americana", "Obispado", "Jardines del Bosque")
BAIRROS = ("Centro", "Jardim Paulista", "Copacabana", "Savassi", "Batel", "Moinhos de Vento", "Barra", "Adrianópolis")


def _address(rng: random.Random, cc: str, city: City) -> dict:
    street = rng.choice(STREETS[cc].split("|"))
    n = rng.randint(1, 120)
    line2 = None
    if cc == "DE":
        line1 = f"{street} {n}"
        line2 = rng.choice([None, None, None, "Hinterhaus", f"{rng.randint(1, 5)}. OG"])
    elif cc == "FR":
        line1 = f"{n} {street}"
        line2 = rng.choice([None, None, f"Appartement {rng.randint(1, 40)}", f"Bâtiment {rng.choice('ABC')}"])
    elif cc == "ES":
        line1 = f"{street}, {n}"
        line2 = f"{rng.randint(1, 8)}º {rng.choice('ABCD')}" if rng.random() < 0.7 else None
    elif cc == "IT":
        line1 = f"{street} {n}"
        line2 = rng.choice([None, None, f"Scala {rng.choice('AB')}, int. {rng.randint(1, 20)}"])
    elif cc == "NL":
        line1 = f"{street} {n}{rng.choice(['', '', '', 'A', '-2', ' bis'])}"
    elif cc == "GB":
        line1 = f"{n} {street}"
        line2 = f"Flat {rng.randint(1, 12)}" if rng.random() < 0.3 else None
    elif cc == "US":
        line1 = f"{rng.randint(100, 9899)} {street}"
        line2 = f"Apt {rng.randint(1, 25)}{rng.choice('ABCD')}" if rng.random() < 0.35 else None
    elif cc == "JP":
        line1 = f"{rng.randint(1, 5)}-{rng.randint(1, 30)}-{rng.randint(1, 20)} {street}"
        line2 = f"Room {rng.randint(1, 12)}0{rng.randint(1, 9)}" if rng.random() < 0.5 else None
    elif cc == "BR":
        line1 = f"{street}, {rng.randint(10, 2500)}"
        line2 = (f"Apto {rng.randint(11, 184)} – " if rng.random() < 0.6 else "") + rng.choice(BAIRROS)
    elif cc == "MX":
        line1 = f"{street} {rng.randint(10, 1999)}"
        line2 = ("Int. " + str(rng.randint(1, 30)) + ", " if rng.random() < 0.4 else "") + "Col. " + rng.choice(COLONIAS)
    elif cc == "CA":
        line1 = f"{rng.randint(10, 2999)} {street}"
        line2 = f"Unit {rng.randint(101, 2405)}" if rng.random() < 0.4 else None
    elif cc == "SE":
        line1 = f"{street} {n}"
        line2 = f"lgh {rng.randint(10, 16)}{rng.randint(1, 4):02d}" if rng.random() < 0.5 else None
    else:  # AU
        line1 = f"{n} {street}"
        line2 = f"Unit {rng.randint(1, 40)}" if rng.random() < 0.3 else None
    return {"line1": line1, "line2": line2, "city": city.name, "postal_code": city.postal(rng),
            "region": city.region, "country": cc}


def _phone_candidate(rng: random.Random, cc: str, city: City) -> str:
    if cc == "DE":
        return "+49" + rng.choice(["151", "152", "157", "160", "170", "171", "172", "175", "176", "177", "178", "179"]) + _digits(rng, rng.choice([7, 8]))
    if cc == "FR":
        return "+33" + rng.choice("67") + _digits(rng, 8)
    if cc == "ES":
        return "+346" + _digits(rng, 8)
    if cc == "IT":
        return "+39" + rng.choice(["320", "328", "333", "338", "340", "347", "348", "349", "366", "380", "392"]) + _digits(rng, 7)
    if cc == "NL":
        return "+316" + _digits(rng, 8)
    if cc == "GB":
        return "+447" + rng.choice("45789") + _digits(rng, 8)
    if cc == "SE":
        return "+467" + rng.choice("0236") + _digits(rng, 7)
    if cc in ("US", "CA"):  # NANP fictional block 555-0100..0199
        return "+1" + rng.choice(city.area) + "55501" + _digits(rng, 2)
    if cc == "JP":
        return "+81" + rng.choice(["70", "80", "90"]) + _digits(rng, 8)
    if cc == "BR":
        return "+55" + city.area[0] + "9" + rng.choice("6789") + _digits(rng, 7)
    if cc == "MX":
        area = city.area[0]
        return "+52" + area + _digits(rng, 10 - len(area))
    if cc == "AU":  # ACMA fictional mobile ranges
        block, lo, hi = rng.choice([("570", 6, 159), ("571", 266, 491), ("572", 549, 665)])
        return f"+61491{block}{rng.randint(lo, hi):03d}"
    raise ValueError(cc)


def is_valid_e164(number: str, country: str | None = None) -> bool:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number(parsed):
        return False
    if phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != number:
        return False
    return country is None or phonenumbers.region_code_for_number(parsed) == country


def _make_phone(rng: random.Random, cc: str, city: City, used: set[str]) -> str:
    for _ in range(500):
        number = _phone_candidate(rng, cc, city)
        if number not in used and is_valid_e164(number, cc):
            used.add(number)
            return number
    raise SeedError(f"could not generate a valid unused phone number for {cc}")
