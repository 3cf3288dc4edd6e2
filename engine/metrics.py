"""What the evaluate command reports: accuracy, per-class precision/recall, confusion, mistakes."""
import numpy as np


def confusion_matrix(labels, predicted, class_count):
    """[true class, predicted class] -> count."""
    matrix = np.zeros((class_count, class_count), np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return matrix


def per_class(matrix, classes):
    """precision, recall and support of every class (0 where nothing was predicted)."""
    rows = []
    for index, name in enumerate(classes):
        hits = int(matrix[index, index])
        predicted = int(matrix[:, index].sum())
        actual = int(matrix[index, :].sum())
        rows.append({'class': name, 'count': actual,
                     'precision': hits / predicted if predicted else 0.0,
                     'recall': hits / actual if actual else 0.0})
    return rows


def evaluation_report(labels, probabilities, classes, image_paths, split):
    """The JSON the evaluate command writes."""
    labels = np.asarray(labels, np.int64)
    predicted = np.argmax(probabilities, axis=1)
    wrong = np.flatnonzero(predicted != labels)
    return report_of(labels, predicted, classes, split, [
        {'image_path': image_paths[i], 'true': classes[labels[i]],
         'predicted': classes[predicted[i]], 'score': float(probabilities[i][predicted[i]])}
        for i in wrong])


def report_of(labels, predicted, classes, split, misclassified):
    """The report's figures from every record's true and predicted label."""
    matrix = confusion_matrix(labels, predicted, len(classes))
    return {
        'split': split,
        'count': int(len(labels)),
        'accuracy': float(np.mean(predicted == labels)) if len(labels) else 0.0,
        'classes': list(classes),
        'per_class': per_class(matrix, classes),
        'confusion_matrix': matrix.tolist(),
        'misclassified': misclassified,
    }
